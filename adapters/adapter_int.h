/* Internals shared by the adapters module's files (adapter.c, instance.c). */
#ifndef NOVA_ADAPTERS_ADAPTER_INT_H
#define NOVA_ADAPTERS_ADAPTER_INT_H

/* Destroy every live instance not in use and stop handing out the others
 * (adapters_shutdown, adapter_registry_reset). */
void adapter_instances_clear(void);

#endif
