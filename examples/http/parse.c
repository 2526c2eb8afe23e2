/*
 * examples/http/parse.c - request parsing, target-to-path mapping and
 * response heads for weft-http (see parse.h). Pure functions, plus a
 * per-thread cache of the Date header's text (formatted at most once a
 * second per worker thread).
 */
#include "parse.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- small text helpers --------------------------------------------------- */

static bool span_is(const char *p, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

static const char *trim(const char *p, const char *end, size_t *len)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *len = (size_t)(end - p);
    return p;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- the request target --------------------------------------------------- */

/* Percent-decode target[0..len) into out; 0, 400 or 414. */
static int decode(const char *target, size_t len, char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = target[i];
        if (c == '%') {
            int hi = i + 1 < len ? hex_digit(target[i + 1]) : -1;
            int lo = i + 2 < len ? hex_digit(target[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return 400;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if ((unsigned char)c <= ' ' || c == 0x7f) {
            return 400;
        }
        if (o + 1 >= cap)
            return 414;
        out[o++] = c;
    }
    out[o] = '\0';
    *outlen = o;
    return 0;
}

/* 403 when a segment of path is "..". */
static int check_segments(const char *path)
{
    for (const char *seg = path; *seg;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (n == 2 && seg[0] == '.' && seg[1] == '.')
            return 403;
        if (!slash)
            break;
        seg = slash + 1;
    }
    return 0;
}

int http_target_path(const char *target, size_t len, char *out, size_t cap)
{
    if (len == 0 || target[0] != '/')
        return 400;             /* absolute-form, authority-form, '*' */
    size_t end = 0;
    while (end < len && target[end] != '?' && target[end] != '#')
        end++;
    size_t n;
    /* Skip the one leading '/': what is left must be relative. */
    int rc = decode(target + 1, end - 1, out, cap, &n);
    if (rc)
        return rc;
    if (out[0] == '/')
        return 403;             /* "//etc/passwd", "/%2Fetc/passwd" */
    rc = check_segments(out);
    if (rc)
        return rc;
    if (n == 0 || out[n - 1] == '/') {
        static const char index[] = "index.html";
        if (n + sizeof index > cap)
            return 414;
        memcpy(out + n, index, sizeof index);
    }
    return 0;
}

/* ---- the request line and headers ----------------------------------------- */

/* "HTTP/1.x": 0 with *minor set, 505 for another major, 400 otherwise. */
static int parse_version(const char *p, size_t len, int *minor)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9'
        || p[7] < '0' || p[7] > '9')
        return 400;
    if (p[5] != '1')
        return 505;
    *minor = p[7] - '0';
    return 0;
}

int http_parse_request_line(const char *line, size_t len, struct http_request *req)
{
    memset(req, 0, offsetof(struct http_request, path));
    req->path[0] = '\0';
    req->header_bytes = len;
    const char *end = line + len;
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 == line)
        return 400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(end - target));
    if (!sp2 || sp2 == target)
        return 400;
    int rc = parse_version(sp2 + 1, (size_t)(end - sp2 - 1), &req->minor);
    if (rc)
        return rc;
    size_t mlen = (size_t)(sp1 - line);
    if (mlen == 3 && memcmp(line, "GET", 3) == 0)
        req->method = HTTP_GET;
    else if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
        req->method = HTTP_HEAD;
    else
        return 405;
    return http_target_path(target, (size_t)(sp2 - target), req->path, sizeof req->path);
}

/* Connection: a comma-separated list of tokens; only "close" matters
 * (HTTP/1.1 keeps alive by default, and HTTP/1.0 gets one response here). */
static void parse_connection(const char *v, size_t len, struct http_request *req)
{
    const char *end = v + len;
    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *stop = comma ? comma : end;
        size_t n;
        const char *tok = trim(v, stop, &n);
        if (span_is(tok, n, "close"))
            req->close = true;
        v = comma ? comma + 1 : end;
    }
}

/* 0 for an absent or zero body, 413 for a body, 400 for a bad length. */
static int parse_content_length(const char *v, size_t len)
{
    if (len == 0)
        return 400;
    bool nonzero = false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        nonzero |= v[i] != '0';
    }
    return nonzero ? 413 : 0;
}

int http_parse_header(const char *line, size_t len, struct http_request *req)
{
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line || line[0] == ' ' || line[0] == '\t')
        return 400;             /* no name, or obsolete line folding */
    size_t nlen = (size_t)(colon - line);
    for (size_t i = 0; i < nlen; i++)
        if (line[i] == ' ' || line[i] == '\t')
            return 400;         /* whitespace before the colon */
    size_t vlen;
    const char *v = trim(colon + 1, line + len, &vlen);
    if (span_is(line, nlen, "Host"))
        req->has_host = true;
    else if (span_is(line, nlen, "Connection"))
        parse_connection(v, vlen, req);
    else if (span_is(line, nlen, "Content-Length"))
        return parse_content_length(v, vlen);
    else if (span_is(line, nlen, "Transfer-Encoding"))
        return 413;             /* a chunked body: never read here */
    return 0;
}

int http_finish_request(const struct http_request *req)
{
    return req->minor >= 1 && !req->has_host ? 400 : 0;
}

bool http_keep_alive(const struct http_request *req)
{
    return req->minor >= 1 && !req->close;   /* HTTP/1.0: one request */
}

/* ---- responses --------------------------------------------------------------- */

const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

const char *http_content_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        { "html", "text/html" }, { "htm", "text/html" }, { "txt", "text/plain" },
        { "css", "text/css" }, { "js", "text/javascript" }, { "json", "application/json" },
        { "png", "image/png" }, { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
        { "gif", "image/gif" }, { "svg", "image/svg+xml" }, { "ico", "image/x-icon" },
        { "pdf", "application/pdf" },
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* The Date header's value, formatted again only when the second changes:
 * per thread, so workers never share it. */
static const char *date_now(void)
{
    static _Thread_local char text[40];
    static _Thread_local time_t cached = -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != cached) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = ts.tv_sec;
    }
    return text;
}

/* Appenders for the head: it is built for every response, so no printf. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_str(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

static char *put_u64(char *p, uint64_t v)
{
    char digits[20];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n)
        *p++ = digits[--n];
    return p;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

size_t http_format_head(char *buf, size_t cap, int status, const char *ctype,
                        uint64_t length, bool keep_alive)
{
    if (cap < HTTP_HEAD_MAX)
        return 0;
    /* Bounded: the reasons, the Date and our content types are short. */
    char *p = PUT_LIT(buf, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)status);
    *p++ = ' ';
    p = put_str(p, http_reason(status));
    p = PUT_LIT(p, "\r\nServer: weft-http\r\nDate: ");
    p = put_str(p, date_now());
    if (ctype) {
        p = PUT_LIT(p, "\r\nContent-Type: ");
        p = put_str(p, ctype);
    }
    p = PUT_LIT(p, "\r\nContent-Length: ");
    p = put_u64(p, length);
    p = keep_alive ? PUT_LIT(p, "\r\nConnection: keep-alive\r\n")
                   : PUT_LIT(p, "\r\nConnection: close\r\n");
    if (status == 405)
        p = PUT_LIT(p, "Allow: GET, HEAD\r\n");
    p = PUT_LIT(p, "\r\n");
    return (size_t)(p - buf);
}
