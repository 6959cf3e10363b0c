import { ROUTE_ARGS_METADATA, CUSTOM_ROUTE_ARGS_METADATA, GUARDS_METADATA, INTERCEPTORS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import type { ModuleRef } from '@nestjs/core';

/** Handler parameters that hand the request (or what carries it) to app code. */
const REQUEST_CARRYING = new Set<number>([RouteParamtypes.REQUEST, RouteParamtypes.RESPONSE, RouteParamtypes.NEXT, RouteParamtypes.SESSION]);

/**
 * Whether app code on this route could read `request.user` or the session: a parameter that
 * carries the request (`@Req()`, `@Res()`, `@Next()`, `@Session()`, any custom decorator such as
 * `@CurrentUser()`), or a guard or interceptor of the controller or the handler. Only a route
 * with none of these can skip loading the user (Django's lazy `request.user`).
 */
export function routeMayRead(controller: Function, handler: Function): boolean {
  const args = Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, handler.name) as Record<string, unknown> | undefined;
  for (const key of Object.keys(args ?? {})) {
    if (key.includes(CUSTOM_ROUTE_ARGS_METADATA)) return true;
    if (REQUEST_CARRYING.has(Number(key.split(':')[0]))) return true;
  }
  for (const target of [controller, handler]) {
    for (const metadata of [GUARDS_METADATA, INTERCEPTORS_METADATA]) {
      const enhancers = Reflect.getMetadata(metadata, target) as unknown[] | undefined;
      if (enhancers && enhancers.length > 0) return true;
    }
  }
  return false;
}

/**
 * Whether the app has global guards or interceptors besides the module's own, which may read
 * `request.user` on any route. Read from Nest's application config; when it cannot be read, the
 * answer is yes, so the user is loaded rather than missed.
 */
export function appHasOtherGlobalEnhancers(moduleRef: ModuleRef, own: Function[]): boolean {
  const config = (moduleRef as unknown as { container?: { applicationConfig?: any } }).container?.applicationConfig;
  if (!config || typeof config.getGlobalGuards !== 'function' || typeof config.getGlobalInterceptors !== 'function') return true;
  const isOwn = (enhancer: unknown) => own.some((type) => enhancer instanceof type);
  const guards: unknown[] = config.getGlobalGuards();
  const interceptors: unknown[] = config.getGlobalInterceptors();
  const requestScoped: unknown[] = [...(config.getGlobalRequestGuards?.() ?? []), ...(config.getGlobalRequestInterceptors?.() ?? [])];
  return requestScoped.length > 0 || guards.some((guard) => !isOwn(guard)) || interceptors.some((interceptor) => !isOwn(interceptor));
}

/**
 * Whether an app guard runs before the module's own (global guards run in the order their
 * modules were registered), so `request.user` must be loaded before the guards start. Unknown
 * counts as yes.
 */
export function appGuardsRunFirst(moduleRef: ModuleRef, own: Function): boolean {
  const config = (moduleRef as unknown as { container?: { applicationConfig?: any } }).container?.applicationConfig;
  if (!config || typeof config.getGlobalGuards !== 'function') return true;
  const guards: unknown[] = config.getGlobalGuards();
  const ours = guards.findIndex((guard) => guard instanceof own);
  return ours !== 0 || (config.getGlobalRequestGuards?.() ?? []).length > 0;
}
