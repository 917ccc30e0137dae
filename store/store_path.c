/* store_path.c - validation of names and absolute paths (pure). */
#include "store.h"

#include <errno.h>
#include <string.h>

int store_name_check(const char *name, size_t len, const struct store_limits *lim)
{
    if (len == 0)
        return EINVAL;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return EINVAL;
    if (memchr(name, '/', len) || memchr(name, '\0', len))
        return EINVAL;
    if (len > lim->max_name_bytes)
        return ENAMETOOLONG;
    return 0;
}

int store_path_check(const char *path, size_t len, const struct store_limits *lim)
{
    if (len == 0 || path[0] != '/')
        return EINVAL;
    if (len == 1)
        return 0;
    /* A malformed component is EINVAL even when the path is also too long:
     * report what is wrong with it before how long it is. */
    int rc = 0;
    size_t i = 1;
    while (i <= len) {
        const char *end = memchr(path + i, '/', len - i);
        size_t n = end ? (size_t)(end - (path + i)) : len - i;
        int c = store_name_check(path + i, n, lim);
        if (c == EINVAL)
            return EINVAL;
        if (c)
            rc = c;
        i += n + 1;
        if (end && i > len) /* trailing '/' */
            return EINVAL;
    }
    if (!rc && len > lim->max_path_bytes)
        rc = ENAMETOOLONG;
    return rc;
}

const char *store_op_name(enum store_op op)
{
    switch (op) {
    case STORE_OP_PUT:
        return "PUT";
    case STORE_OP_APPEND:
        return "APPEND";
    case STORE_OP_DELETE:
        return "DELETE";
    case STORE_OP_MKDIR:
        return "MKDIR";
    case STORE_OP_RMDIR:
        return "RMDIR";
    case STORE_OP_RENAME:
        return "RENAME";
    case STORE_OP_SETATTR:
        return "SETATTR";
    case STORE_OP_MEMBER_SET:
        return "MEMBER_SET";
    case STORE_OP_MEMBER_DEL:
        return "MEMBER_DEL";
    case STORE_OP_TXN:
        return "TXN";
    case STORE_OP_LEASE_GRANT:
        return "LEASE_GRANT";
    case STORE_OP_LEASE_REVOKE:
        return "LEASE_REVOKE";
    case STORE_OP_AUTH:
        return "AUTH";
    }
    return "?";
}

const char *store_event_op_name(uint32_t op)
{
    static const char *const names[] = {"?",     "put",   "append", "delete",
                                        "mkdir", "rmdir", "rename", "setattr"};
    return op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}
