"""Scraping and alerting as code: a ServiceMonitor and a PrometheusRule per service (prometheus-operator)."""
