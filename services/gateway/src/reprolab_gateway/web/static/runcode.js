// Code from the browser the way students have it: one file, several, or a whole folder, packed here into
// the .tar.gz the platform takes (POSIX ustar, gzip by the browser's CompressionStream). A folder's own
// name is left out, so its files land in /work; .git, __pycache__ and notebook checkpoints stay behind.
"use strict";

(() => {
  const SKIP = /(^|\/)(\.git|__pycache__|\.ipynb_checkpoints|\.DS_Store)(\/|$)/;
  const enc = new TextEncoder();

  const octal = (n, width) => n.toString(8).padStart(width - 1, "0") + "\0";

  const header = (path, size, mtime) => {
    const h = new Uint8Array(512);
    const put = (text, at, width) => h.set(enc.encode(text).subarray(0, width), at);
    let name = path;
    let prefix = "";
    if (enc.encode(path).length > 100) {
      // ustar: a long path is split at a "/" into prefix (155) and name (100)
      const cut = path.lastIndexOf("/", 155);
      if (cut <= 0 || enc.encode(path.slice(cut + 1)).length > 100) throw new Error(`path too long for an archive: ${path}`);
      prefix = path.slice(0, cut);
      name = path.slice(cut + 1);
    }
    put(name, 0, 100);
    put("0000644\0", 100, 8);
    put("0000000\0", 108, 8);
    put("0000000\0", 116, 8);
    put(octal(size, 12), 124, 12);
    put(octal(mtime, 12), 136, 12);
    put("        ", 148, 8); // the checksum is computed with its own field as spaces
    put("0", 156, 1);
    put("ustar\0", 257, 6);
    put("00", 263, 2);
    put(prefix, 345, 155);
    const sum = h.reduce((a, b) => a + b, 0);
    put(octal(sum, 7) + " ", 148, 8);
    return h;
  };

  // [{path, file}] -> the files' paths inside /work ("folder/x.py" -> "x.py" for a picked folder)
  const entries = (files, folder) => [...files].map((file) => {
    let path = folder ? (file.webkitRelativePath || file.name) : file.name;
    if (folder && path.includes("/")) path = path.slice(path.indexOf("/") + 1);
    return { path, file };
  }).filter((e) => e.path && !SKIP.test(e.path)).sort((a, b) => (a.path < b.path ? -1 : 1));

  const pack = async (files, folder) => {
    const list = entries(files, folder);
    if (!list.length) throw new Error(folder ? "the folder has no files to run" : "choose at least one file");
    const parts = [];
    for (const { path, file } of list) {
      parts.push(header(path, file.size, Math.floor((file.lastModified || 0) / 1000)), file);
      const pad = (512 - (file.size % 512)) % 512;
      if (pad) parts.push(new Uint8Array(pad));
    }
    parts.push(new Uint8Array(1024));
    const tar = new Blob(parts);
    const gz = await new Response(tar.stream().pipeThrough(new CompressionStream("gzip"))).blob();
    return { blob: gz, paths: list.map((e) => e.path) };
  };

  window.ReprolabCode = { pack, entries };
})();
