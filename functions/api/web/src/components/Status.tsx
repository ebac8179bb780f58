import { ApiError } from '../lib/http';

/** An API error as a sentence, with the request id support can look up. */
export function ErrorBox({ error, what }: { error: Error; what: string }) {
  const requestId = error instanceof ApiError ? error.requestId : undefined;
  return (
    <div className="error" role="alert">
      <strong>Could not load {what}.</strong> {error.message}
      {requestId && !error.message.includes(requestId) && <span className="muted"> (request {requestId})</span>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}
