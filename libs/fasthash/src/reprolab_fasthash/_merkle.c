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

/* SHA-256(prefix || item[i] || ... || item[i + group - 1]) for each run of ``group`` items: the one loop
 * behind both entry points. ``need`` >= 0 requires every item to be that many bytes. */
static PyObject *
hash_groups(PyObject *arg, unsigned char prefix, Py_ssize_t group, Py_ssize_t need, const char *name)
{
    /* a tuple (the same object if it is one): a list could change size under us */
    PyObject *seq = PySequence_Tuple(arg);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    if (n % group) {  /* only node_level's pairs can be short */
        PyErr_Format(PyExc_ValueError, "%s() takes an even number of hashes, not %zd", name, n);
        Py_DECREF(seq);
        return NULL;
    }
    PyObject **items = &PyTuple_GET_ITEM(seq, 0);
    PyObject *out = PyList_New(n / group);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    SHA256_CTX start, ctx;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256_Init(&start);
    SHA256_Update(&start, &prefix, 1);
    for (Py_ssize_t i = 0; i < n; i += group) {
        ctx = start;
        for (Py_ssize_t j = i; j < i + group; j++)
            if (hash_into(&ctx, items[j], need, j) < 0)
                goto fail;
        SHA256_Final(md, &ctx);
        PyObject *digest = PyBytes_FromStringAndSize((const char *)md, SHA256_DIGEST_LENGTH);
        if (digest == NULL)
            goto fail;
        PyList_SET_ITEM(out, i / group, digest);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(out);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *
leaf_hashes(PyObject *module, PyObject *arg)
{
    return hash_groups(arg, 0x00, 1, -1, "leaf_hashes");
}

static PyObject *
node_level(PyObject *module, PyObject *arg)
{
    return hash_groups(arg, 0x01, 2, SHA256_DIGEST_LENGTH, "node_level");
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
