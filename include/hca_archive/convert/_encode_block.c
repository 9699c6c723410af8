/* The converter's common case in compiled code: one block of 10x FASTQ lines -> BAM records.
 *
 * encode(r1_lines, r2_lines, i1_lines_or_None, r1_tail, r2_tail, i1_tail,
 *        barcode_length, barcode_umi_length) -> bytes | None
 *
 * The lines are those BlockEncoder.encode receives (four a read, no line breaks); the tails are
 * the files' default header tails. The bytes returned are exactly those of the pure-Python fast
 * path (layout.BlockEncoder._encode_fast) for a layout whose files all end lines with "\n" and
 * whose '+' lines do not repeat the header. None declines the block: the caller then runs the
 * Python paths. This code declines MORE than the Python fast path (see `accepted` below) and
 * must never accept a block the Python path would refuse or encode differently.
 *
 * What a block must be to be accepted, read by read and file by file:
 *   - every line a bytes object, at most INT32_MAX long, the same number of reads in every file;
 *   - header: '@' then printable ASCII (0x20-0x7E; so no tab, CR or other control byte);
 *   - '+' line: exactly "+";
 *   - bases and qualities of equal length; R1 and I1 printable, R1 of one length in the whole
 *     block and at least barcode+UMI long; R2 at least one base, bases ACGTN, qualities '!'-'~'
 *     and not the lone "*" (SAM's "no qualities");
 *   - the read name the same in every file, 1 to 254 bytes, no space, not starting with '@';
 *   - each file's tail printable. Either every header of a file is '@' name tail (the "whole"
 *     case: names are what precedes the tail), or, when the tail starts with a space, names end
 *     at the first space and a read whose header text after the name is not the tail gets a
 *     t1/t2/ti tag (the "per-read" case), as the Python fast path does.
 *
 * Memory safety: the input is untrusted. Every object's type is checked before its buffer is
 * read, every length is checked, the output size is computed (with overflow checks) before the
 * one allocation, and every write is bounds-checked against that allocation. No Python code runs
 * between the checks and the writes (allocating a bytes object cannot trigger the cyclic GC, as
 * bytes are not GC-tracked), so the borrowed list items stay alive and unchanged throughout.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_QNAME 254
#define N_FILES 3
enum { R1 = 0, R2 = 1, I1 = 2 };
static const char TAG_SUFFIX[N_FILES] = {'1', '2', 'i'};

/* Byte classes, filled in at module initialisation. */
static unsigned char printable[256]; /* 0x20-0x7E */
static unsigned char base_code[256]; /* BAM 4-bit code of A, C, G, T, N; 0 for any other byte */

typedef struct {
    PyObject *lines;       /* list of bytes, four a read; NULL when the file is absent */
    const char *tail;      /* the file's default header tail */
    Py_ssize_t tail_len;
    int per_read;          /* names end at the first space; other tails get a t tag */
} File;

/* A line of a file; its type was checked (exact bytes) in the first pass. */
static inline PyObject *line(const File *f, Py_ssize_t read, int which)
{
    return PyList_GET_ITEM(f->lines, 4 * read + which);
}

static int all_printable(const char *s, Py_ssize_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!printable[u[i]]) {
            return 0;
        }
    }
    return 1;
}

/* The read name within a header (after '@'), per the file's case; checked in pass 2. */
static inline void read_name(const File *f, const char *h, Py_ssize_t h_len, const char **name,
                             Py_ssize_t *name_len)
{
    *name = h + 1;
    if (f->per_read) {
        const char *space = memchr(h + 1, ' ', (size_t)(h_len - 1));
        *name_len = space ? space - (h + 1) : h_len - 1;
    } else {
        *name_len = h_len - 1 - f->tail_len;
    }
}

/* Bounds-checked output: a write that would not fit sets `overflow` and writes nothing. */
typedef struct {
    char *pos;
    char *end;
    int overflow;
} Out;

static inline char *reserve(Out *o, Py_ssize_t n)
{
    if (o->overflow || n < 0 || n > o->end - o->pos) {
        o->overflow = 1;
        return NULL;
    }
    char *at = o->pos;
    o->pos += n;
    return at;
}

static inline void put(Out *o, const void *src, Py_ssize_t n)
{
    char *at = reserve(o, n);
    if (at != NULL && n > 0) {
        memcpy(at, src, (size_t)n);
    }
}

static inline void put_int32(Out *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(o, b, 4);
}

/* A Z tag: two-letter name, 'Z', the value, NUL. */
static inline void put_z(Out *o, const char *name, const char *value, Py_ssize_t n)
{
    put(o, name, 2);
    put(o, "Z", 1);
    put(o, value, n);
    put(o, "", 1);
}

/* 1: the block is accepted and `*result` holds its records; 0: declined; -1: an exception. */
static int encode_block(File *files, Py_ssize_t bc, Py_ssize_t bu, PyObject **result)
{
    const Py_ssize_t n_lines = PyList_GET_SIZE(files[R2].lines);
    const Py_ssize_t k = n_lines / 4;
    if (k == 0 || n_lines % 4 != 0) {
        return 0;
    }
    for (int f = 0; f < N_FILES; f++) {
        if (files[f].lines != NULL && PyList_GET_SIZE(files[f].lines) != n_lines) {
            return 0;
        }
    }

    /* Pass 1: types and lengths of every line, the shape of every record, and which case (whole
     * or per-read) each file's headers are in. */
    Py_ssize_t r1_len = -1;
    for (int f = 0; f < N_FILES; f++) {
        File *file = &files[f];
        if (file->lines == NULL) {
            continue;
        }
        int whole = 1;
        for (Py_ssize_t i = 0; i < n_lines; i++) {
            PyObject *item = PyList_GET_ITEM(file->lines, i);
            if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) > INT32_MAX) {
                return 0;
            }
        }
        for (Py_ssize_t r = 0; r < k; r++) {
            PyObject *h = line(file, r, 0), *s = line(file, r, 1);
            PyObject *p = line(file, r, 2), *q = line(file, r, 3);
            const char *hs = PyBytes_AS_STRING(h);
            const Py_ssize_t h_len = PyBytes_GET_SIZE(h);
            if (h_len < 2 || hs[0] != '@') {
                return 0;
            }
            if (PyBytes_GET_SIZE(p) != 1 || PyBytes_AS_STRING(p)[0] != '+') {
                return 0;
            }
            const Py_ssize_t s_len = PyBytes_GET_SIZE(s);
            if (s_len != PyBytes_GET_SIZE(q)) {
                return 0;
            }
            if (f == R1) {
                if (r1_len < 0) {
                    r1_len = s_len;
                }
                if (s_len != r1_len || s_len < bu) {
                    return 0;
                }
            }
            /* '@', a name of at least one byte, then the tail */
            if (whole && (h_len < file->tail_len + 2 ||
                          memcmp(hs + h_len - file->tail_len, file->tail,
                                 (size_t)file->tail_len) != 0)) {
                whole = 0;
            }
        }
        if (!whole) {
            if (file->tail_len == 0 || file->tail[0] != ' ') {
                return 0;
            }
            file->per_read = 1;
        }
    }

    /* Pass 2: contents, read names, and the size of the output. */
    uint64_t total = 0;
    for (Py_ssize_t r = 0; r < k; r++) {
        const char *qname = NULL;
        Py_ssize_t qname_len = 0;
        uint64_t size = 36 + 1; /* block_size to TLEN, then the read name's NUL */
        for (int f = 0; f < N_FILES; f++) {
            const File *file = &files[f];
            if (file->lines == NULL) {
                continue;
            }
            PyObject *h = line(file, r, 0), *s = line(file, r, 1), *q = line(file, r, 3);
            const char *hs = PyBytes_AS_STRING(h), *ss = PyBytes_AS_STRING(s);
            const char *qs = PyBytes_AS_STRING(q);
            const Py_ssize_t h_len = PyBytes_GET_SIZE(h), s_len = PyBytes_GET_SIZE(s);
            if (!all_printable(hs, h_len)) {
                return 0;
            }
            const char *name;
            Py_ssize_t name_len;
            read_name(file, hs, h_len, &name, &name_len);
            if (qname == NULL) {
                if (name_len < 1 || name_len > MAX_QNAME || name[0] == '@' ||
                    memchr(name, ' ', (size_t)name_len) != NULL) {
                    return 0;
                }
                qname = name;
                qname_len = name_len;
                size += (uint64_t)name_len;
            } else if (name_len != qname_len || memcmp(name, qname, (size_t)name_len) != 0) {
                return 0;
            }
            if (file->per_read) {
                const Py_ssize_t rest = h_len - 1 - name_len;
                if (rest != file->tail_len ||
                    memcmp(hs + 1 + name_len, file->tail, (size_t)rest) != 0) {
                    size += 4 + (uint64_t)rest; /* tN Z tail NUL */
                }
            }
            if (f == R2) {
                const unsigned char *b = (const unsigned char *)ss;
                const unsigned char *v = (const unsigned char *)qs;
                if (s_len < 1 || (s_len == 1 && qs[0] == '*')) {
                    return 0;
                }
                for (Py_ssize_t j = 0; j < s_len; j++) {
                    if (!base_code[b[j]] || v[j] < '!' || v[j] > '~') {
                        return 0;
                    }
                }
                size += (uint64_t)(s_len + 1) / 2 + (uint64_t)s_len;
            } else {
                if (!all_printable(ss, s_len) || !all_printable(qs, s_len)) {
                    return 0;
                }
                if (f == R1) { /* CR, UR, CY, UY; s1 and q1 with what follows the UMI */
                    size += 2 * (uint64_t)bu + 16;
                    if (s_len > bu) {
                        size += 2 * (uint64_t)(s_len - bu) + 8;
                    }
                } else { /* BC, QT */
                    size += 2 * (uint64_t)s_len + 8;
                }
            }
        }
        /* Each part is at most INT32_MAX, so `size` cannot wrap; block_size must fit an int32. */
        if (size - 4 > INT32_MAX) {
            return 0;
        }
        total += size;
        if (total > PY_SSIZE_T_MAX) {
            return 0;
        }
    }

    /* Pass 3: the records. */
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (bytes == NULL) {
        return -1;
    }
    Out o = {PyBytes_AS_STRING(bytes), PyBytes_AS_STRING(bytes) + total, 0};
    const Py_ssize_t umi = bu - bc;
    for (Py_ssize_t r = 0; r < k && !o.overflow; r++) {
        char *start = o.pos;
        const File *f1 = &files[R1], *f2 = &files[R2], *fi = &files[I1];
        PyObject *h2 = line(f2, r, 0), *s2 = line(f2, r, 1), *q2 = line(f2, r, 3);
        PyObject *s1 = line(f1, r, 1), *q1 = line(f1, r, 3);
        const char *name;
        Py_ssize_t name_len;
        read_name(f2, PyBytes_AS_STRING(h2), PyBytes_GET_SIZE(h2), &name, &name_len);
        const Py_ssize_t l2 = PyBytes_GET_SIZE(s2);
        const unsigned char *b2 = (const unsigned char *)PyBytes_AS_STRING(s2);
        const unsigned char *v2 = (const unsigned char *)PyBytes_AS_STRING(q2);

        char *block_size = reserve(&o, 4); /* filled in once the record is written */
        /* refID -1, pos -1, l_read_name, MAPQ 0, bin 4680, no CIGAR, FLAG 4 (unmapped) */
        static const char unplaced[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
        put(&o, unplaced, 8);
        const unsigned char l_read_name = (unsigned char)(name_len + 1);
        put(&o, &l_read_name, 1);
        static const char flags[7] = {0, 0x48, 0x12, 0, 0, 4, 0};
        put(&o, flags, 7);
        put_int32(&o, (uint32_t)l2);
        /* next refID -1, next pos -1, TLEN 0 */
        static const char no_mate[12] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0};
        put(&o, no_mate, 12);
        put(&o, name, name_len);
        put(&o, "", 1);
        /* SEQ: two 4-bit codes a byte, the first in the high half; a 0 code after an odd last */
        unsigned char *seq = (unsigned char *)reserve(&o, (l2 + 1) / 2);
        if (seq != NULL) {
            for (Py_ssize_t j = 0; j + 1 < l2; j += 2) {
                seq[j / 2] = (unsigned char)(base_code[b2[j]] << 4 | base_code[b2[j + 1]]);
            }
            if (l2 & 1) {
                seq[l2 / 2] = (unsigned char)(base_code[b2[l2 - 1]] << 4);
            }
        }
        /* QUAL: Phred scores, FASTQ's characters less 33 */
        unsigned char *qual = (unsigned char *)reserve(&o, l2);
        if (qual != NULL) {
            for (Py_ssize_t j = 0; j < l2; j++) {
                qual[j] = (unsigned char)(v2[j] - 33);
            }
        }
        const char *r1s = PyBytes_AS_STRING(s1), *r1q = PyBytes_AS_STRING(q1);
        const Py_ssize_t l1 = PyBytes_GET_SIZE(s1);
        put_z(&o, "CR", r1s, bc);
        put_z(&o, "UR", r1s + bc, umi);
        put_z(&o, "CY", r1q, bc);
        put_z(&o, "UY", r1q + bc, umi);
        if (l1 > bu) {
            put_z(&o, "s1", r1s + bu, l1 - bu);
            put_z(&o, "q1", r1q + bu, l1 - bu);
        }
        if (fi->lines != NULL) {
            PyObject *si = line(fi, r, 1), *qi = line(fi, r, 3);
            put_z(&o, "BC", PyBytes_AS_STRING(si), PyBytes_GET_SIZE(si));
            put_z(&o, "QT", PyBytes_AS_STRING(qi), PyBytes_GET_SIZE(qi));
        }
        for (int f = 0; f < N_FILES; f++) {
            const File *file = &files[f];
            if (file->lines == NULL || !file->per_read) {
                continue;
            }
            PyObject *h = line(file, r, 0);
            const char *hs = PyBytes_AS_STRING(h);
            const Py_ssize_t rest = PyBytes_GET_SIZE(h) - 1 - name_len;
            if (rest != file->tail_len ||
                memcmp(hs + 1 + name_len, file->tail, (size_t)rest) != 0) {
                const char tag[2] = {'t', TAG_SUFFIX[f]};
                put_z(&o, tag, hs + 1 + name_len, rest);
            }
        }
        if (block_size != NULL && !o.overflow) {
            const uint32_t n = (uint32_t)(o.pos - start - 4);
            block_size[0] = (char)n;
            block_size[1] = (char)(n >> 8);
            block_size[2] = (char)(n >> 16);
            block_size[3] = (char)(n >> 24);
        }
    }
    if (o.overflow || o.pos != o.end) {
        Py_DECREF(bytes);
        PyErr_SetString(PyExc_SystemError, "_encode_block: records differ from their computed size");
        return -1;
    }
    *result = bytes;
    return 1;
}

static int parse_file(File *file, PyObject *lines, PyObject *tail, const char *what)
{
    if (!PyList_CheckExact(lines)) {
        PyErr_Format(PyExc_TypeError, "%s lines must be a list, not %.100s", what,
                     Py_TYPE(lines)->tp_name);
        return -1;
    }
    if (!PyBytes_CheckExact(tail)) {
        PyErr_Format(PyExc_TypeError, "%s tail must be bytes, not %.100s", what,
                     Py_TYPE(tail)->tp_name);
        return -1;
    }
    file->lines = lines;
    file->tail = PyBytes_AS_STRING(tail);
    file->tail_len = PyBytes_GET_SIZE(tail);
    file->per_read = 0;
    return 0;
}

static PyObject *encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "encode() takes 8 arguments (%zd given)", nargs);
        return NULL;
    }
    File files[N_FILES] = {{0}};
    if (parse_file(&files[R1], args[0], args[3], "R1") < 0 ||
        parse_file(&files[R2], args[1], args[4], "R2") < 0) {
        return NULL;
    }
    if (args[2] != Py_None && parse_file(&files[I1], args[2], args[5], "I1") < 0) {
        return NULL;
    }
    if (!PyLong_CheckExact(args[6]) || !PyLong_CheckExact(args[7])) {
        PyErr_SetString(PyExc_TypeError, "barcode lengths must be int");
        return NULL;
    }
    const Py_ssize_t bc = PyLong_AsSsize_t(args[6]), bu = PyLong_AsSsize_t(args[7]);
    if ((bc == -1 || bu == -1) && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return NULL;
        }
        PyErr_Clear(); /* beyond any schema: declined below as other out-of-range values are */
        Py_RETURN_NONE;
    }
    /* Lengths beyond any 10x schema, or tails the Python path must handle: decline. */
    if (bc < 0 || bu < bc || bu > 4096) {
        Py_RETURN_NONE;
    }
    for (int f = 0; f < N_FILES; f++) {
        if (files[f].lines != NULL && !all_printable(files[f].tail, files[f].tail_len)) {
            Py_RETURN_NONE;
        }
    }
    PyObject *result = NULL;
    const int accepted = encode_block(files, bc, bu, &result);
    if (accepted < 0) {
        return NULL;
    }
    if (accepted == 0) {
        Py_RETURN_NONE;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL,
     "encode(r1_lines, r2_lines, i1_lines_or_None, r1_tail, r2_tail, i1_tail, barcode_length, "
     "barcode_umi_length) -> bytes | None\n\n"
     "BAM records of one block of FASTQ lines, exactly as BlockEncoder._encode_fast makes them "
     "for a layout with '\\n' line ends and bare '+' lines; None to leave the block to Python."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_encode_block",
    "The converter's common-case block encoding, in C (see layout.BlockEncoder).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__encode_block(void)
{
    for (int c = 0x20; c <= 0x7e; c++) {
        printable[c] = 1;
    }
    /* BAM's 4-bit codes: "=ACMGRSVTWYHKDBN"; the fast path takes A, C, G, T and N only. */
    base_code['A'] = 1;
    base_code['C'] = 2;
    base_code['G'] = 4;
    base_code['T'] = 8;
    base_code['N'] = 15;
    return PyModule_Create(&module_def);
}
