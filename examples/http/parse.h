/*
 * examples/http/parse.h - the HTTP/1.1 side of weft-http, without any I/O:
 * parsing a request line and its header lines, turning the request target
 * into a path below the served root, and formatting response heads.
 *
 * Invariants kept by the parser:
 *  - a path it accepts is relative, decoded, NUL-free, has no ".." segment
 *    and never starts with '/': openat(root_fd, path) cannot leave the root
 *    through the path's text (symbolic links inside the root are followed,
 *    as a static server usually does);
 *  - every refusal is an HTTP status (400, 403, 405, 413, 414, 431, 505),
 *    never a partial request: the caller answers it and closes.
 * conn.c reads the lines (weft/stream.h) and calls these between awaits.
 */
#ifndef WEFT_EXAMPLES_HTTP_PARSE_H
#define WEFT_EXAMPLES_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest decoded path below the root (a longer target: 414). */
#define HTTP_PATH_MAX 1024

/* Room a response head needs (status line and our few headers). */
#define HTTP_HEAD_MAX 384

enum http_method { HTTP_GET, HTTP_HEAD };

/* What conn.c needs of a request; the rest of its headers are skipped. */
struct http_request {
    enum http_method method;
    int minor;                  /* HTTP/1.<minor> */
    bool close;                 /* the client asked for Connection: close */
    bool has_host;
    size_t header_bytes;        /* request line and headers so far */
    char path[HTTP_PATH_MAX + 16];  /* room for "index.html" after a '/' */
};

/* Parse "METHOD SP target SP HTTP/1.x" (len bytes, no line terminator) into
 * *req, which it resets. 0, or the status to answer with. */
int http_parse_request_line(const char *line, size_t len, struct http_request *req);

/* Parse one header line ("Name: value", no terminator). 0, or the status to
 * answer with (400 malformed, 413 for a request body, which this server
 * never reads). */
int http_parse_header(const char *line, size_t len, struct http_request *req);

/* After the blank line: 0, or 400 for an HTTP/1.1 request without Host. */
int http_finish_request(const struct http_request *req);

/* True when the connection may serve another request after this one. */
bool http_keep_alive(const struct http_request *req);

/* Decode target's path part (up to '?' or '#') into out (cap bytes, NUL
 * terminated) as a path relative to the root: "/" and "/dir/" get
 * "index.html". 0, 400 (bad escape, %00, not origin-form), 403 (a ".."
 * segment or an absolute path after decoding) or 414 (too long). */
int http_target_path(const char *target, size_t len, char *out, size_t cap);

/* The reason phrase of a status this server sends. */
const char *http_reason(int status);

/* A Content-Type for path, from its extension. */
const char *http_content_type(const char *path);

/* Format a response head into buf (cap >= HTTP_HEAD_MAX): status line,
 * Server, Date, Content-Type (when ctype is not NULL), Content-Length,
 * Connection, blank line. Returns its length. */
size_t http_format_head(char *buf, size_t cap, int status, const char *ctype,
                        uint64_t length, bool keep_alive);

#endif /* WEFT_EXAMPLES_HTTP_PARSE_H */
