/*
 * The Cloud Hypervisor backend. This step has its config keys only: a
 * machine with "backend": "cloud-hypervisor" is checked at mount time; its
 * launch comes with the REST client.
 */
#include "backends/cloud_hypervisor.h"

#include <errno.h>

static int
chv_launch(const struct backend_launch *l, struct backend **out,
	   struct aerr *err)
{
	*out = NULL;
	aerr_set(err, "cloud-hypervisor: launching is not implemented yet");
	return -EOPNOTSUPP;
}

const struct backend_ops cloud_hypervisor_backend_ops = {
	.name = "cloud-hypervisor",
	.caps = BACKEND_CAP_PAUSE | BACKEND_CAP_SNAPSHOT,
	.config_keys = chv_config_keys,
	.check_config = chv_check_config,
	.launch = chv_launch,
};
