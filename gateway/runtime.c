#include "gateway/runtime.h"

int novad_runtime_init(struct novad_runtime *rt, struct nova_err *err)
{
	int rc;
	if ((rc = notify_init(&rt->work, err)))
		return rc;
	if ((rc = notify_init(&rt->inventory, err)))
		goto fail_work;
	if ((rc = notify_init(&rt->reconciler, err)))
		goto fail_inventory;
	if ((rc = notify_init(&rt->routes, err)))
		goto fail_reconciler;
	if ((rc = notify_init(&rt->autoscale, err)))
		goto fail_routes;
	return 0;
fail_routes:
	notify_finish(&rt->routes);
fail_reconciler:
	notify_finish(&rt->reconciler);
fail_inventory:
	notify_finish(&rt->inventory);
fail_work:
	notify_finish(&rt->work);
	return rc;
}

void novad_runtime_finish(struct novad_runtime *rt)
{
	if (!rt)
		return;
	notify_finish(&rt->autoscale);
	notify_finish(&rt->routes);
	notify_finish(&rt->reconciler);
	notify_finish(&rt->inventory);
	notify_finish(&rt->work);
}
