// Served from the binary; loads the contract the same server serves at /openapi.yaml.
window.ui = SwaggerUIBundle({ url: "/openapi.yaml", dom_id: "#swagger-ui", deepLinking: true });
