/*
 * package.h - the .tptpkg package: writing (atomically), inspecting and
 * extracting (safely).
 *
 * FORMAT (format_version 1)
 *
 * A ZIP archive (written with libarchive, entries deflate-compressed, every
 * entry a regular file with mode 0644, uid/gid 0 and mtime 0 (stored as
 * the DOS minimum 1980-01-01) so the same inputs give byte-identical
 * packages). Entries:
 *
 *   ir.txt                      the IR as text
 *   targets/<plugin-id>/...     one folder per target: RTL, bitstreams,
 *                               netlists, firmware sources, binaries,
 *                               build files
 *   reports/...                 pre-flight, quantisation profile, partition
 *                               plan, verification results, resource and
 *                               cost estimates (machine-readable, e.g.
 *                               .json) and a human-readable report
 *   manifest.json               always the LAST entry (see below)
 *
 * The layout above is a convention of the callers; this module only
 * enforces the entry-name rules: relative, '/'-separated, 1..255 bytes of
 * printable ASCII (0x20..0x7e) without '\', no empty, "." or ".."
 * components, no leading or trailing '/', unique, no name that is also a
 * folder of another name (no "a" beside "a/b"), and not "manifest.json"
 * (reserved). At most 100000 entries, each at most 1 GiB, together at most
 * 4 GiB.
 *
 * manifest.json is a JSON object:
 *   {
 *     "format": "tptpkg",
 *     "format_version": 1,
 *     "crucible_version": "<version of the writing crucible>",
 *     ...caller's members, e.g.
 *     "model": {"path": "...", "sha256": "<hex>"},
 *     "plugins": [{"id": "...", "version": "..."}, ...],
 *     "tools": [{"name": "...", "version": "..."}, ...],
 *     "artifacts": [
 *       {"name": "<entry name>", "size": <bytes>, "sha256": "<64 hex>"}, ...
 *     ]
 *   }
 * "artifacts" lists every entry except manifest.json itself, in the order
 * they were written; sha256 is lower-case hex of the uncompressed bytes.
 *
 * Seal: the ZIP archive comment (the last bytes of the file) is
 *   "tptpkg-seal sha256:<64 lower-case hex>"
 * the SHA-256 of every byte of the file before the comment (the comment
 * length field of the end-of-central-directory record included). It lets
 * a reader detect damage anywhere in the file, including ZIP metadata
 * that no entry hash covers (timestamps, attributes, extra fields). It is
 * an integrity check, not a signature.
 *
 * Readers refuse packages with a format_version they do not know.
 */
#ifndef CR_PACKAGE_H
#define CR_PACKAGE_H

#include <stddef.h>

#include "util.h"

#define PKG_FORMAT_VERSION 1
#define PKG_MAX_ENTRIES 100000u
#define PKG_MAX_ENTRY_SIZE (1ull << 30)  /* 1 GiB */
#define PKG_MAX_TOTAL_SIZE (4ull << 30)  /* 4 GiB */
#define PKG_MAX_NAME 255
#define PKG_MAX_MANIFEST (32u << 20)     /* 32 MiB */

/* ---- writing ------------------------------------------------------------ */

typedef struct pkg_writer pkg_writer;

/* Starts a package that will appear at final_path only when committed.
 * Creates final_path.tmp.XXXXXX beside it. NULL on failure (err set). */
pkg_writer *pkg_writer_open(const char *final_path, char *err, size_t errlen);

/* Adds an entry (name rules above). 0, or -1 with pkg_writer_error() set.
 * A refused name or limit leaves the writer usable; a failure after the
 * entry was started (I/O, a file changing while read) makes every later
 * call fail, and the package can then only be aborted. */
int pkg_add(pkg_writer *w, const char *name, const void *data, size_t len);
/* Adds the contents of the regular file at path. */
int pkg_add_file(pkg_writer *w, const char *name, const char *path);
/* The last error (never NULL; "" if none). */
const char *pkg_writer_error(pkg_writer *w);

/* Writes manifest.json (manifest_extra_json: text of extra members, e.g.
 * "\"model\":{...},\"plugins\":[...]", inserted verbatim after
 * crucible_version; NULL or blank for none; the result must be valid JSON
 * without duplicate keys), closes the archive, seals it, fsyncs, and
 * renames the temporary file onto final_path. Always frees w. Returns 0,
 * or -1 with err set: then the temporary file is removed and final_path is
 * neither created nor replaced. */
int pkg_writer_commit(pkg_writer *w, const char *manifest_extra_json,
                      char *err, size_t errlen);
/* Discards the package: removes the temporary file, frees w (NULL-safe). */
void pkg_writer_abort(pkg_writer *w);

/* Is name acceptable as an entry name? 0, or -1 with the reason in why. */
int pkg_check_name(const char *name, char *why, size_t whylen);

/* ---- reading ------------------------------------------------------------ */

/* Verifies the package at path: reads every entry (ZIP only; limits as
 * above), parses manifest.json, recomputes every entry's size and SHA-256
 * and compares them with the manifest, and checks the seal.
 *
 * Appends (either may be NULL) a human-readable report to human: a
 * manifest summary, then one line per artifact
 *   "ok  <size>  <name>"
 *   "BAD <name>: sha256 mismatch (manifest X, actual Y)" / "missing" /
 *   "not in manifest" / ...
 * and one JSON object to json:
 *   {"path":..,"ok":bool,"seal":"ok|mismatch|missing|unreadable",
 *    "manifest":<manifest.json verbatim, or null>,
 *    "entries":[{"name","size","sha256","status"[,"expected_size",
 *                "expected_sha256"][,"error"]}],
 *    "errors":[..]}
 * with status one of "ok", "mismatch", "missing" (listed, not in the
 * archive), "unlisted" (in the archive, not listed) or "unverified"
 * (reading stopped at an earlier damaged entry).
 *
 * Returns 0 if everything verifies, 1 if the package is readable but
 * something failed (every bad entry is named), -1 if it is unreadable (not
 * a ZIP, truncated, no or bad manifest) with err set. */
int pkg_inspect(const char *path, jbuf *human, jbuf *json, char *err,
                size_t errlen);

/* Verifies the package (as pkg_inspect; anything but 0 is refused) and
 * extracts it into dir (created if missing). Only regular files and
 * folders are accepted; absolute names, ".." components, symlinks,
 * hardlinks, devices and fifos, entries over 1 GiB or a total over 4 GiB
 * are refused with an error naming the entry. Files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW below dir (folders opened with O_NOFOLLOW), so
 * nothing is written outside dir and an existing file or symlink in dir
 * is never followed or overwritten (extraction fails instead). Data is
 * re-hashed while written; on any failure the files and folders created by
 * this call are removed. Returns 0 or -1 (err set). */
int pkg_extract(const char *path, const char *dir, char *err, size_t errlen);

#endif
