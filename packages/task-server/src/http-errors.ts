/**
 * The error envelope on the wire, as FastAPI's `HTTPException(detail={"error": ...})` renders it:
 * `{"detail":{"error":{"code":"...","message":"...", ...extra}}}`.
 */
import type { Response } from 'express'

/** Wire error codes (the `detail.error.code` field). */
export type WireErrorCode =
  | 'unauthorised'
  | 'auth_missing'
  | 'auth_invalid'
  | 'missing_environment_api_key'
  | 'invalid_request'
  | 'invalid_json'
  | 'payload_too_large'
  | 'unsupported_encoding'
  | 'not_found'
  | 'method_not_allowed'
  | 'not_ready'
  | 'startup_failed'
  | 'shutting_down'
  | 'request_timeout'
  | 'rollout_failed'
  | 'invalid_rollout_response'
  | 'rollout_timeout'
  | 'rollout_cancelled'
  | 'invalid_task_info'
  | 'internal_error'
  | 'job_not_found'
  | 'job_already_finished'
  | 'job_store_full'
  | 'job_store_unavailable'
  | 'job_quota_exceeded'
  | 'missing_openai_api_key'
  | 'openai_error'
  | 'vendor_error'
  | 'vendor_unreachable'

/** The body of every error answer. */
export interface ErrorEnvelope {
  detail: { error: { code: WireErrorCode; message: string; [extra: string]: unknown } }
}

/** Builds the envelope. */
export function errorBody(
  code: WireErrorCode,
  message: string,
  extra?: Record<string, unknown>,
): ErrorEnvelope {
  return { detail: { error: { code, message, ...extra } } }
}

/** Sends the envelope unless the response has already started. */
export function sendError(
  res: Response,
  status: number,
  code: WireErrorCode,
  message: string,
  extra?: Record<string, unknown>,
): void {
  if (res.headersSent || res.writableEnded) return
  res.status(status).json(errorBody(code, message, extra))
}
