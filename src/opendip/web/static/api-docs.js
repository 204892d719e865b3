// The interactive API documentation (/docs): Swagger UI from the vendored bundle, started
// here rather than in an inline script so that /docs runs under the platform's own CSP.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
