/* parse_dump.c - parse one .dldl file and print its AST (test driver).
 *
 *   parse_dump FILE    AST (ast_dump) on stdout, diagnostics on stderr;
 *                      exit 0, or 1 when the file has errors, 2 when unreadable.
 * The same text as `dldlc FILE --emit=ast`; kept for the grammar's goldens.
 */
#include "common/diag.h"
#include "common/util.h"
#include "grammar/ast.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: parse_dump FILE\n");
        return 2;
    }
    DlSource src;
    if (dl_source_read(&src, argv[1], NULL) != 0) {
        fprintf(stderr, "parse_dump: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    DlDiag diag;
    dl_diag_init(&diag, &src, stderr);
    DlPool *pool = dl_pool_new();
    AstFile *file;
    int nerr = dl_parse(&src, pool, &diag, &file);
    DlBuf out = {0};
    ast_dump(file, &out);
    if (out.n) fwrite(out.s, 1, out.n, stdout);
    dl_buf_free(&out);
    dl_pool_free(pool);
    dl_source_free(&src);
    return nerr ? 1 : 0;
}
