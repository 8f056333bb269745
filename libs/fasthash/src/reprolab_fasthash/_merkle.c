/* RFC 6962 Merkle hashes of many inputs in one call.
 *
 * leaf_hashes(docs)  -> [SHA-256(0x00 || doc) for doc in docs]
 * node_level(nodes)  -> [SHA-256(0x01 || nodes[2i] || nodes[2i+1]) for each pair]
 *
 * Inputs are any bytes-like objects (node_level: each exactly 32 bytes, an even count). The
 * hashing is OpenSSL's low-level SHA-256 (its assembly, with the SHA extensions where the CPU has
 * them); the prefixed context is made once and copied per input as a plain struct.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/sha.h>

static int
hash_into(SHA256_CTX *ctx, PyObject *item, Py_ssize_t need, Py_ssize_t index)
{
    if (PyBytes_CheckExact(item)) {
        Py_ssize_t len = PyBytes_GET_SIZE(item);
        if (need >= 0 && len != need) {
            PyErr_Format(PyExc_ValueError, "item %zd is %zd bytes, not %zd", index, len, need);
            return -1;
        }
        SHA256_Update(ctx, PyBytes_AS_STRING(item), (size_t)len);
        return 0;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0)
        return -1;
    if (need >= 0 && view.len != need) {
        PyErr_Format(PyExc_ValueError, "item %zd is %zd bytes, not %zd", index, view.len, need);
        PyBuffer_Release(&view);
        return -1;
    }
    SHA256_Update(ctx, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return 0;
}

static PyObject *
leaf_hashes(PyObject *module, PyObject *arg)
{
    /* a tuple (the same object if it is one): a list could change size under us */
    PyObject *seq = PySequence_Tuple(arg);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    static const unsigned char prefix = 0x00;
    SHA256_CTX start, ctx;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Init(&start);
    SHA256_Update(&start, &prefix, 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        ctx = start;
        if (hash_into(&ctx, items[i], -1, i) < 0)
            goto fail;
        SHA256_Final(md, &ctx);
        PyObject *digest = PyBytes_FromStringAndSize((const char *)md, SHA256_DIGEST_LENGTH);
        if (digest == NULL)
            goto fail;
        PyList_SET_ITEM(out, i, digest);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(out);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *
node_level(PyObject *module, PyObject *arg)
{
    PyObject *seq = PySequence_Tuple(arg);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    if (n % 2) {
        PyErr_Format(PyExc_ValueError, "node_level() takes an even number of hashes, not %zd", n);
        Py_DECREF(seq);
        return NULL;
    }
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *out = PyList_New(n / 2);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    static const unsigned char prefix = 0x01;
    SHA256_CTX start, ctx;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Init(&start);
    SHA256_Update(&start, &prefix, 1);
    for (Py_ssize_t i = 0; i < n; i += 2) {
        ctx = start;
        if (hash_into(&ctx, items[i], SHA256_DIGEST_LENGTH, i) < 0 ||
                hash_into(&ctx, items[i + 1], SHA256_DIGEST_LENGTH, i + 1) < 0)
            goto fail;
        SHA256_Final(md, &ctx);
        PyObject *digest = PyBytes_FromStringAndSize((const char *)md, SHA256_DIGEST_LENGTH);
        if (digest == NULL)
            goto fail;
        PyList_SET_ITEM(out, i / 2, digest);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(out);
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef methods[] = {
    {"leaf_hashes", leaf_hashes, METH_O,
     "leaf_hashes(docs) -> list of SHA-256(0x00 || doc), one per bytes-like doc (RFC 6962 leaf hashes)."},
    {"node_level", node_level, METH_O,
     "node_level(nodes) -> list of SHA-256(0x01 || left || right) for consecutive pairs of 32-byte hashes "
     "(an even count; RFC 6962 node hashes one level up)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_merkle", "RFC 6962 leaf and node hashes of many inputs per call.", 0, methods,
};

PyMODINIT_FUNC
PyInit__merkle(void)
{
    return PyModuleDef_Init(&module_def);
}
