/* router.c - the route table, the one list of revokd's endpoints. A test
 * holds it against openapi.yaml (revokd --routes). */
#include "revokd/router.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "revokd/routes.h"
#include "revokd/url.h"
#include "revokd/utf8.h"

/* Which listener serves a route once REVOKD_ADMIN_LISTEN is set: the
 * gateway-facing one (REVOKD_LISTEN), the admin one, or both (health, so
 * that a load balancer or an orchestrator probes either port). On the other
 * listener the route does not exist: 404, counted as unmatched. */
enum route_where { ROUTE_PUBLIC, ROUTE_ADMIN, ROUTE_BOTH };

struct route {
    const char *method; /* "*": any method */
    const char *path;   /* one "{...}" segment at most, or a final "{path}": the rest, '/'s included */
    enum request_step (*handler)(struct request *req, struct reply *rep);
    const char *allow; /* every method on this path, for 405 */
    const char *label; /* "METHOD /path", the metrics' route label */
    bool form;         /* the body is application/x-www-form-urlencoded (OAuth), not JSON */
    enum route_where where;
    bool revocation;   /* an edge forwards it to the central service (route_edge.c) */
};

/* method and path are string literals, so the label is made by the compiler. */
#define ROUTE(method, path, handler, allow) {method, path, handler, allow, method " " path, false, ROUTE_PUBLIC, false}
#define ROUTE_FORM(method, path, handler, allow) {method, path, handler, allow, method " " path, true, ROUTE_PUBLIC, false}
#define ROUTE_ADMIN(method, path, handler, allow) {method, path, handler, allow, method " " path, false, ROUTE_ADMIN, false}
#define ROUTE_BOTH(method, path, handler, allow) {method, path, handler, allow, method " " path, false, ROUTE_BOTH, false}
/* A revocation, which an edge forwards: form and where as above. */
#define REVOCATION(method, path, handler, form, where) {method, path, handler, method, method " " path, form, where, true}

static const struct route routes[] = {
    ROUTE("GET", "/v1/check", route_check_get, "GET, POST"),
    ROUTE("POST", "/v1/check", route_check_post, "GET, POST"),
    REVOCATION("POST", "/v1/revoke", route_revoke, false, ROUTE_PUBLIC),
    REVOCATION("POST", "/v1/revoke-all", route_revoke_all, false, ROUTE_PUBLIC),
    REVOCATION("POST", "/v1/admin/revoke", route_admin_revoke, false, ROUTE_ADMIN),
    REVOCATION("POST", "/v1/admin/subjects/{sub}/revoke-all", route_admin_revoke_all, false, ROUTE_ADMIN),
    ROUTE_ADMIN("POST", "/v1/admin/reload", route_admin_reload, "POST"),
    REVOCATION("POST", "/oauth2/revoke", route_oauth_revoke, true, ROUTE_PUBLIC),
    ROUTE_FORM("POST", "/oauth2/introspect", route_oauth_introspect, "POST"),
    REVOCATION("POST", "/global-token-revocation", route_oauth_global_revocation, false, ROUTE_PUBLIC),
    /* The feed is for edges and SIEMs, which reach the service as gateways
     * do: on the main listener, with its own keys. */
    ROUTE("GET", "/v1/events", route_events, "GET"),
    ROUTE("*", "/v1/authz", route_authz, "*"),
    ROUTE("*", "/v1/authz/{path}", route_authz, "*"),
    ROUTE_BOTH("GET", "/healthz", route_health_live, "GET"),
    ROUTE_BOTH("GET", "/readyz", route_health_ready, "GET"),
    ROUTE_ADMIN("GET", "/metrics", route_metrics, "GET"),
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Matches path against pattern; a "{...}" segment matches one non-empty
 * segment, decoded into param, and a final "{path}" anything, empty too
 * (not decoded: it is the gateway's original path, which no handler reads).
 * Returns 1 on a match, 0 otherwise, -1 when the segment matched but does
 * not decode to text (utf8.h). */
static int match(const char *pattern, const char *path, char *param, size_t size)
{
    const char *open = strchr(pattern, '{');

    if (open == NULL)
        return strcmp(pattern, path) == 0;
    if (strcmp(open, "{path}") == 0) /* empty too: Envoy checks "/" as "/v1/authz/" */
        return strncmp(pattern, path, (size_t)(open - pattern)) == 0;
    size_t head = (size_t)(open - pattern);
    const char *tail = strchr(open, '}') + 1;
    size_t pathlen = strlen(path), taillen = strlen(tail);

    if (pathlen <= head + taillen || strncmp(pattern, path, head) != 0 ||
        strcmp(path + pathlen - taillen, tail) != 0)
        return 0;
    const char *seg = path + head;
    size_t seglen = pathlen - head - taillen;
    if (memchr(seg, '/', seglen) != NULL)
        return 0;
    long n = url_decode(seg, seglen, param, size);
    return n > 0 && utf8_is_text(param, (size_t)n) ? 1 : -1;
}

/* Whether Content-Type is want, parameters allowed ("application/json ;
 * charset=utf-8"), nothing else ("application/json garbage"). */
static bool is_type(const char *type, const char *want)
{
    size_t n = strlen(want);
    if (type == NULL || strncasecmp(type, want, n) != 0)
        return false;
    type += n + strspn(type + n, " \t");
    return *type == '\0' || *type == ';';
}

/* Whether the route exists on the request's listener. */
static bool serves(const struct route *r, enum request_listener l)
{
    return l == REQUEST_LISTENER_ONLY || r->where == ROUTE_BOTH ||
           (r->where == ROUTE_ADMIN) == (l == REQUEST_LISTENER_ADMIN);
}

enum request_step router_dispatch(struct request *req, struct reply *rep)
{
    const char *allow = NULL;

    req->route = -1;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!serves(&routes[i], req->listener))
            continue;
        int rc = match(routes[i].path, req->path, req->param, sizeof(req->param));
        if (rc == 0)
            continue;
        bool any = strcmp(routes[i].method, "*") == 0;
        if (!any && strcmp(routes[i].method, req->method) != 0) {
            allow = routes[i].allow; /* the path is known; maybe another method matches */
            continue;
        }
        /* From here on the route matched, whatever the answer: requests
         * are counted under it. */
        req->route = (int)i;
        if (rc < 0) {
            reply_error(rep, 400, "invalid_request",
                        "the path segment is not percent-encoded UTF-8 text");
            return REQUEST_DONE;
        }
        /* GET bodies are ignored (and bounded by http_server.c); only a POST
         * body is read, so only its type matters. */
        const char *type = routes[i].form ? "application/x-www-form-urlencoded" : "application/json";
        if (!any && req->body_len > 0 && strcmp(req->method, "POST") == 0 && !is_type(req->content_type, type)) {
            reply_error(rep, 415, "unsupported_media_type",
                        routes[i].form ? "the body must be application/x-www-form-urlencoded"
                                       : "request bodies must be application/json");
            return REQUEST_DONE;
        }
        /* On an edge a revocation is central's to judge and store. */
        return (routes[i].revocation && req->app->edge ? route_edge_forward : routes[i].handler)(req, rep);
    }
    if (allow != NULL) {
        rep->allow = allow;
        reply_error(rep, 405, "method_not_allowed", "this path does not take that method");
    } else {
        reply_error(rep, 404, "not_found", "no such endpoint");
    }
    return REQUEST_DONE;
}

void router_print_routes(FILE *out)
{
    for (size_t i = 0; i < NROUTES; i++)
        fprintf(out, "%s %s\n", routes[i].method, routes[i].path);
}

size_t router_route_count(void)
{
    return NROUTES;
}

const char *router_route_label(size_t i)
{
    return i < NROUTES ? routes[i].label : NULL;
}
