"""The service images built from service_src: config, the image table, and the ServiceImages component."""
