/*
 * backends/rest.c against tests/unit/httpd.h, a canned HTTP/1.1 server on a
 * unix socket: what goes on the wire (method, path, headers, bodies) and
 * what becomes of each answer (2xx, the VMMs' error shapes, no answer, no
 * server).
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backends/rest.h"
#include "tests/unit/httpd.h"

struct rfix {
	char dir[64];
	char sock[96];
	struct httpd h;
	struct rest_client *c;
};

static int
setup(void **state)
{
	struct rfix *f = calloc(1, sizeof(*f));
	struct aerr err;

	snprintf(f->dir, sizeof(f->dir), "/tmp/attestfs-rest.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->sock, sizeof(f->sock), "%s/api.sock", f->dir);
	if (httpd_start(&f->h, f->sock) < 0)
		return -1;
	if (rest_open(f->sock, "http://localhost", 5000, &f->c, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct rfix *f = *state;

	rest_close(f->c);
	httpd_stop(&f->h);
	rmdir(f->dir);
	free(f);
	return 0;
}

static const struct httpd_req *
req(struct rfix *f, size_t i)
{
	assert_true(f->h.n_reqs > i);
	return &f->h.reqs[i];
}

static void
assert_header(const struct httpd_req *r, const char *name, const char *value)
{
	const char *v = httpd_header(r, name);

	assert_non_null(v);
	assert_int_equal(strncmp(v, value, strlen(value)), 0);
	assert_true(v[strlen(value)] == '\r');
}

/*
 * libcurl (and the ~30 libraries it pulls in: 6 MiB of the daemon's VmRSS)
 * is loaded by the first rest_open, not at start: a daemon of QEMU machines
 * never carries it. First in main, before any rest_open.
 */
static void
test_libcurl_loaded_on_demand(void **state)
{
	struct rest_client *c = NULL;
	struct aerr err = { "" };
	void *lib;

	assert_null(dlopen(REST_LIBCURL, RTLD_NOW | RTLD_NOLOAD));
	assert_int_equal(rest_open("/nonexistent/api.sock", "http://localhost",
				   1000, &c, &err), 0);
	lib = dlopen(REST_LIBCURL, RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(lib);
	dlclose(lib);
	rest_close(c);
}

static void
test_put_body(void **state)
{
	struct rfix *f = *state;
	json_object *body = json_tokener_parse("{\"vcpu_count\":2,"
					       "\"mem_size_mib\":256}");
	struct aerr err = { "" };
	json_object *reply = (json_object *)1;
	long status = -1;
	const struct httpd_req *r;

	assert_int_equal(rest_call(f->c, "PUT", "/machine-config", body,
				   &status, &reply, &err), 0);
	assert_int_equal(status, 204);
	assert_null(reply);
	r = req(f, 0);
	assert_string_equal(r->method, "PUT");
	assert_string_equal(r->path, "/machine-config");
	assert_header(r, "Content-Type", "application/json");
	assert_header(r, "Accept", "application/json");
	assert_null(httpd_header(r, "Expect"));
	assert_null(httpd_header(r, "Transfer-Encoding"));
	assert_int_equal(r->content_length, (long)strlen(r->body));
	assert_string_equal(r->body, "{\"vcpu_count\":2,\"mem_size_mib\":256}");
	json_object_put(body);
}

static void
test_put_without_body(void **state)
{
	struct rfix *f = *state;
	struct aerr err = { "" };
	const struct httpd_req *r;

	assert_int_equal(rest_call(f->c, "PUT", "/vm.boot", NULL, NULL, NULL,
				   &err), 0);
	r = req(f, 0);
	assert_string_equal(r->method, "PUT");
	assert_int_equal(r->content_length, 0);
	assert_header(r, "Content-Length", "0");
}

static void
test_get_then_patch(void **state)
{
	struct rfix *f = *state;
	json_object *reply = NULL, *v, *body;
	struct aerr err = { "" };
	long status = 0;
	const struct httpd_req *r;

	httpd_push(&f->h, httpd_resp(200, "{\"firecracker_version\":"
					  "\"1.16.1\"}"));
	assert_int_equal(rest_call(f->c, "GET", "/version", NULL, &status,
				   &reply, &err), 0);
	assert_int_equal(status, 200);
	assert_non_null(reply);
	assert_true(json_object_object_get_ex(reply, "firecracker_version",
					      &v));
	assert_string_equal(json_object_get_string(v), "1.16.1");
	json_object_put(reply);
	r = req(f, 0);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->path, "/version");
	assert_true(r->content_length <= 0);
	assert_int_equal(r->body_len, 0);

	/* The same handle: the GET's options do not stick, nor the PATCH's. */
	body = json_tokener_parse("{\"state\":\"Paused\"}");
	assert_int_equal(rest_call(f->c, "PATCH", "/vm", body, NULL, NULL,
				   &err), 0);
	json_object_put(body);
	assert_int_equal(rest_call(f->c, "GET", "/", NULL, NULL, NULL, &err),
			 0);
	r = req(f, 1);
	assert_string_equal(r->method, "PATCH");
	assert_string_equal(r->body, "{\"state\":\"Paused\"}");
	r = req(f, 2);
	assert_string_equal(r->method, "GET");
	assert_true(r->content_length <= 0);
}

static void
test_base_path(void **state)
{
	struct rfix *f = *state;
	struct rest_client *c;
	struct aerr err = { "" };

	assert_int_equal(rest_open(f->sock, "http://localhost/api/v1", 5000,
				   &c, &err), 0);
	assert_int_equal(rest_call(c, "PUT", "/vm.pause", NULL, NULL, NULL,
				   &err), 0);
	assert_string_equal(req(f, 0)->path, "/api/v1/vm.pause");
	assert_string_equal(rest_socket_path(c), f->sock);
	rest_close(c);
}

static void
test_fault_message(void **state)
{
	struct rfix *f = *state;
	json_object *body = json_tokener_parse("{\"action_type\":\"Bogus\"}");
	json_object *reply = NULL;
	struct aerr err = { "" };
	long status = 0;

	httpd_push(&f->h, httpd_resp(400, "{\"fault_message\":\"The requested "
					  "operation is not supported after "
					  "starting the microVM.\"}"));
	assert_int_equal(rest_call(f->c, "PUT", "/actions", body, &status,
				   &reply, &err), -EINVAL);
	json_object_put(body);
	assert_int_equal(status, 400);
	assert_null(reply);
	assert_string_equal(err.msg, "PUT /actions: The requested operation "
			    "is not supported after starting the microVM.");
}

static void
test_micro_http_error(void **state)
{
	struct rfix *f = *state;
	struct aerr err = { "" };

	httpd_push(&f->h, httpd_resp(400, "{ \"error\": \"Invalid header.\\n"
					  "All previous unanswered requests "
					  "will be dropped.\" }"));
	assert_int_equal(rest_call(f->c, "GET", "/", NULL, NULL, NULL, &err),
			 -EINVAL);
	/* One line: the log is line-based. */
	assert_string_equal(err.msg, "GET /: Invalid header. All previous "
			    "unanswered requests will be dropped.");
}

static void
test_ch_error_array(void **state)
{
	struct rfix *f = *state;
	struct aerr err = { "" };

	httpd_push(&f->h, httpd_resp(500, "[\"Error from API\",\"The VM "
					  "could not boot\",\"Invalid "
					  "kernel\"]"));
	assert_int_equal(rest_call(f->c, "PUT", "/vm.boot", NULL, NULL, NULL,
				   &err), -EIO);
	assert_string_equal(err.msg, "PUT /vm.boot: Error from API: The VM "
			    "could not boot: Invalid kernel");
	httpd_push(&f->h, httpd_resp(404, "[\"VM is not created\"]"));
	assert_int_equal(rest_call(f->c, "GET", "/vm.info", NULL, NULL, NULL,
				   &err), -ENOENT);
	assert_string_equal(err.msg, "GET /vm.info: VM is not created");
}

static void
test_other_bodies(void **state)
{
	struct rfix *f = *state;
	struct aerr err = { "" };
	long status = 0;

	httpd_push(&f->h, httpd_resp(413, NULL));
	assert_int_equal(rest_call(f->c, "PUT", "/mmds", NULL, &status, NULL,
				   &err), -EIO);
	assert_int_equal(status, 413);
	assert_string_equal(err.msg, "PUT /mmds: HTTP status 413");
	httpd_push(&f->h, httpd_resp(500, "internal\nerror"));
	assert_int_equal(rest_call(f->c, "PUT", "/x", NULL, NULL, NULL, &err),
			 -EIO);
	assert_string_equal(err.msg, "PUT /x: internal error");
	/* A 2xx whose body is not JSON. */
	httpd_push(&f->h, httpd_resp(200, "not json"));
	assert_int_equal(rest_call(f->c, "GET", "/", NULL, NULL, NULL, &err),
			 -EPROTO);
}

static void
test_timeout(void **state)
{
	struct rfix *f = *state;
	struct aerr err = { "" };

	httpd_push(&f->h, NULL); /* never answers */
	assert_int_equal(rest_call_timeout(f->c, "PUT", "/actions", NULL, 200,
					   NULL, NULL, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "no answer within 200 ms"));
	/* And the next call works on a new connection. */
	assert_int_equal(rest_call(f->c, "GET", "/", NULL, NULL, NULL, &err),
			 0);
}

static void
test_no_socket(void **state)
{
	struct rfix *f = *state;
	struct rest_client *c;
	struct aerr err = { "" };
	char *path = xasprintf("%s/none.sock", f->dir);

	assert_int_equal(rest_open(path, "http://localhost", 1000, &c, &err),
			 0);
	assert_int_equal(rest_call(c, "GET", "/", NULL, NULL, NULL, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "cannot connect"));
	assert_non_null(strstr(err.msg, path));
	rest_close(c);
	free(path);
}

static void
test_long_socket_path(void **state)
{
	struct rfix *f = *state;
	char *dir = xasprintf("%s/%0100d", f->dir, 0);
	char *path = xasprintf("%s/api.sock", dir);
	char *short_path = xasprintf("%s/s.sock", f->dir);
	struct httpd h2;
	struct rest_client *c;
	struct aerr err = { "" };

	assert_int_equal(mkdir_p(dir, 0700), 0);
	/* Bound at a short path, then moved past sun_path's length. */
	assert_int_equal(httpd_start(&h2, short_path), 0);
	assert_int_equal(rename(short_path, path), 0);
	assert_int_equal(rest_open(path, "http://localhost", 1000, &c, &err),
			 0);
	assert_int_equal(rest_call(c, "GET", "/", NULL, NULL, NULL, &err), 0);
	assert_int_equal(h2.n_reqs, 1);
	rest_close(c);
	httpd_stop(&h2);
	free(path);
	free(short_path);
	remove_tree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libcurl_loaded_on_demand),
		cmocka_unit_test_setup_teardown(test_put_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_without_body, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_get_then_patch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_base_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_message, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_micro_http_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ch_error_array, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_bodies, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_socket_path, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
