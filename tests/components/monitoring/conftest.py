"""The services' own fixtures (tests/services/*), to scrape /metrics of the running services."""

from tests.services.connector_gateway.conftest import (  # noqa: F401 - fixtures
    gateway,
    policies,
    saas,
    seeded_openbao,
    start_gateway,
)
from tests.services.provisioner.conftest import pg_url, postgres, provisioner_factory, saleor, saleor_key  # noqa: F401 - fixtures
