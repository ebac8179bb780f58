import { ErrorBox, Loading } from '../../components/Status';
import { useOpenApi } from './api';

/** /openapi.json for people: every route, its parameters and its answers. */
export function Docs() {
  const spec = useOpenApi();
  if (spec.error) return <ErrorBox error={spec.error} what="the API description" />;
  if (!spec.data) return <Loading what="the API description" />;
  const { info, paths } = spec.data;
  return (
    <section aria-labelledby="docs-title" className="docs">
      <div className="toolbar">
        <h1 id="docs-title">{info.title}</h1>
        <span className="muted">version {info.version} · <a href="/openapi.json">openapi.json</a></span>
      </div>
      {info.description && <p>{info.description}</p>}
      {Object.entries(paths).map(([path, ops]) =>
        Object.entries(ops).map(([method, op]) => (
          <article key={`${method} ${path}`} className="operation">
            <h2>
              <span className={`method ${method}`}>{method.toUpperCase()}</span> <code>{path}</code>
            </h2>
            {op.summary && <p>{op.summary}</p>}
            {op.description && <p className="muted">{op.description}</p>}
            {op.parameters && op.parameters.length > 0 && (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Parameter</th>
                    <th scope="col">In</th>
                    <th scope="col">Type</th>
                    <th scope="col">About</th>
                  </tr>
                </thead>
                <tbody>
                  {op.parameters.map((p) => (
                    <tr key={`${p.in}:${p.name}`}>
                      <td>
                        <code>{p.name}</code>
                        {p.required ? ' *' : ''}
                      </td>
                      <td>{p.in}</td>
                      <td>{p.schema?.type ?? ''}</td>
                      <td>{p.description ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {op.requestBody !== undefined && <p className="muted">Takes a JSON body (see openapi.json).</p>}
            <p className="responses">
              {Object.entries(op.responses ?? {}).map(([status, r]) => (
                <span key={status} className={`badge status-${status[0]}`} title={r.description ?? r.$ref ?? ''}>
                  {status}
                </span>
              ))}
            </p>
          </article>
        )),
      )}
    </section>
  );
}
