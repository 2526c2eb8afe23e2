/*
 * tests/examples/test_http_parse.c - examples/http's HTTP text (parse.c):
 * the target-to-path mapping that keeps requests inside the root, the
 * request line and header refusals, keep-alive, and the response head.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../examples/http/parse.h"

static int path_of(const char *target, char *out)
{
    return http_target_path(target, strlen(target), out, HTTP_PATH_MAX);
}

Test(http_parse, paths_stay_below_the_root)
{
    static const struct { const char *target; int status; const char *path; } cases[] = {
        { "/", 0, "index.html" },
        { "/a/b.txt?x=1#f", 0, "a/b.txt" },
        { "/dir/", 0, "dir/index.html" },
        { "/a%20b", 0, "a b" },
        { "/..a/b..", 0, "..a/b.." },           /* not a ".." segment */
        { "/../x", 403, NULL },
        { "/a/../../x", 403, NULL },
        { "/%2e%2e/x", 403, NULL },
        { "/a/..", 403, NULL },
        { "//etc/passwd", 403, NULL },
        { "/%2Fetc/passwd", 403, NULL },
        { "/a%00b", 400, NULL },
        { "/a%zz", 400, NULL },
        { "/a%2", 400, NULL },
        { "http://h/x", 400, NULL },
        { "*", 400, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[HTTP_PATH_MAX];
        int rc = path_of(cases[i].target, out);
        cr_expect_eq(rc, cases[i].status, "%s: %d, expected %d", cases[i].target, rc,
                     cases[i].status);
        if (rc == 0 && cases[i].path)
            cr_expect_str_eq(out, cases[i].path, "%s", cases[i].target);
    }
    char longer[HTTP_PATH_MAX + 10];
    memset(longer, 'a', sizeof longer - 1);
    longer[0] = '/';
    longer[sizeof longer - 1] = '\0';
    char out[HTTP_PATH_MAX];
    cr_expect_eq(path_of(longer, out), 414);
}

static int line(const char *text, struct http_request *req)
{
    return http_parse_request_line(text, strlen(text), req);
}

Test(http_parse, request_lines)
{
    struct http_request req;
    cr_expect_eq(line("GET /x HTTP/1.1", &req), 0);
    cr_expect(req.method == HTTP_GET && req.minor == 1);
    cr_expect_str_eq(req.path, "x");
    cr_expect_eq(line("HEAD / HTTP/1.0", &req), 0);
    cr_expect(req.method == HTTP_HEAD && req.minor == 0);
    cr_expect_eq(line("POST / HTTP/1.1", &req), 405);
    cr_expect_eq(line("GET / HTTP/2.0", &req), 505);
    cr_expect_eq(line("GET / HTTP/1.10", &req), 400);
    cr_expect_eq(line("GET /", &req), 400);
    cr_expect_eq(line(" GET / HTTP/1.1", &req), 400);
    cr_expect_eq(line("GET  / HTTP/1.1", &req), 400);
}

static int header(const char *text, struct http_request *req)
{
    return http_parse_header(text, strlen(text), req);
}

Test(http_parse, headers_and_keep_alive)
{
    struct http_request req;
    cr_assert_eq(line("GET / HTTP/1.1", &req), 0);
    cr_expect_eq(http_finish_request(&req), 400, "HTTP/1.1 needs Host");
    cr_expect_eq(header("host:  example ", &req), 0);
    cr_expect_eq(http_finish_request(&req), 0);
    cr_expect(http_keep_alive(&req));
    cr_expect_eq(header("Connection: Upgrade, close", &req), 0);
    cr_expect(!http_keep_alive(&req));
    cr_expect_eq(header("Content-Length: 0", &req), 0);
    cr_expect_eq(header("Content-Length: 12", &req), 413);
    cr_expect_eq(header("Content-Length: 1x", &req), 400);
    cr_expect_eq(header("Transfer-Encoding: chunked", &req), 413);
    cr_expect_eq(header("No colon", &req), 400);
    cr_expect_eq(header("Bad name: x", &req), 400);
    cr_expect_eq(header(" folded", &req), 400);
    cr_assert_eq(line("GET / HTTP/1.0", &req), 0);
    cr_expect_eq(http_finish_request(&req), 0, "HTTP/1.0 needs no Host");
    cr_expect(!http_keep_alive(&req));
}

Test(http_parse, response_head)
{
    char head[HTTP_HEAD_MAX];
    size_t n = http_format_head(head, sizeof head, 405, "text/plain", 23, false);
    cr_assert(n > 0 && n < sizeof head);
    head[n] = '\0';
    cr_expect(strncmp(head, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0, "%s", head);
    cr_expect(strstr(head, "\r\nContent-Length: 23\r\n") != NULL, "%s", head);
    cr_expect(strstr(head, "\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n") != NULL, "%s",
              head);
    cr_expect(strstr(head, "\r\nDate: ") != NULL && strstr(head, " GMT\r\n") != NULL);
    cr_expect_str_eq(http_content_type("a/b.HTML"), "text/html");
    cr_expect_str_eq(http_content_type("a.d/noext"), "application/octet-stream");
    cr_expect_eq(http_format_head(head, 10, 200, NULL, 0, true), 0, "room is checked");
}
