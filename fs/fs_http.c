/* fs_http.c - what --metrics-addr serves (docs/operations.md, "Metrics and
 * health"): GET /metrics, the text of .raftfs/metrics (the node's metrics
 * and this mount's kernel cache counters); GET /health, 200 or 503 with
 * the node's health as JSON (node_get_health). Anything else is 404; the
 * server (net_http.c) answers other methods with 405. Runs on the server's
 * thread, which fs_serve stops before the node and the fs go away. */
#include "fs_internal.h"

#include <stdlib.h>
#include <string.h>

static void text(struct net_http_reply *out, int status, const char *type, const char *s)
{
    out->status = status;
    out->content_type = type;
    out->body = strdup(s);
    out->len = out->body ? strlen(out->body) : 0;
    if (!out->body)
        out->status = 500;
}

void fs_http_handle(void *ctx, const char *path, struct net_http_reply *out)
{
    struct fs *fs = ctx;
    if (!strcmp(path, "/metrics")) {
        if (fs_ctl_metrics(fs, &out->body, &out->len)) {
            text(out, 500, NULL, "out of memory\n");
            return;
        }
        out->status = 200;
        out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (!strcmp(path, "/health")) {
        struct node_health h;
        char buf[512];
        node_get_health(fs->node, &h);
        node_health_json(&h, buf, sizeof(buf));
        text(out, h.healthy ? 200 : 503, "application/json", buf);
    } else {
        text(out, 404, NULL, "not found: try /metrics or /health\n");
    }
}
