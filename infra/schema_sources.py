"""Where each third-party schema the checks read comes from: upstream repository, release tag, path, sha256.

The schemas are not part of this repository (docs/contracts.md). This table is what lets any machine get
the exact bytes the checks were written against: ``make schemas`` fetches each file from
``https://raw.githubusercontent.com/<repo>/<tag>/<path>`` and keeps it only if its sha256 is the one pinned
here; a schema directory given through ``CMP_SCHEMA_DIR`` is checked against the same pins
(``python -m tools.schemas check``). A new schema version is a new row, with the sha256 of the upstream file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

RAW_GITHUB = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class SchemaSource:
    """One file of the schema directory (``file``, relative) and the upstream file it is a copy of."""

    file: str
    repo: str
    tag: str
    path: str
    sha256: str

    def url(self, base: str = RAW_GITHUB) -> str:
        return f"{base.rstrip('/')}/{self.repo}/{self.tag}/{self.path}"


SOURCES: tuple[SchemaSource, ...] = (
    SchemaSource("saleor/saleor-3.20.119.graphql", "saleor/saleor", "3.20.119", "saleor/graphql/schema.graphql",
                 "3068ac899bf493e1db568818872db35a88fa9e98ed17e615f90a699112144ba4"),
    SchemaSource("saleor/saleor-3.21.69.graphql", "saleor/saleor", "3.21.69", "saleor/graphql/schema.graphql",
                 "fea93985c393ce57eeddffb1c99040726d794b9044d19d40bc29f088969aeb67"),
    SchemaSource("saleor/saleor-3.23.28.graphql", "saleor/saleor", "3.23.28", "saleor/graphql/schema.graphql",
                 "36a111ba8f822b25a62fa82df0d7e4477e1aebc611d70adb83f5006a5cf76624"),
    SchemaSource("external-secrets/external-secrets.io_externalsecrets.yaml", "external-secrets/external-secrets",
                 "v2.9.0", "config/crds/bases/external-secrets.io_externalsecrets.yaml",
                 "5044be5a610ca90a075f34f03ed20b462695c43387ba9410db7f4250e47b1e2f"),
    SchemaSource("external-secrets/external-secrets.io_clustersecretstores.yaml",
                 "external-secrets/external-secrets", "v2.9.0",
                 "config/crds/bases/external-secrets.io_clustersecretstores.yaml",
                 "f847c69ae317a76527fc37c163ddfe15d9026e14eb47dd325319e914e0433c2a"),
    SchemaSource("prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
                 "prometheus-operator/prometheus-operator", "v0.93.0",
                 "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
                 "78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d"),
    SchemaSource("prometheus-operator/monitoring.coreos.com_servicemonitors.yaml",
                 "prometheus-operator/prometheus-operator", "v0.93.0",
                 "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
                 "a99047972c9dd7679ce2050b9968e8a08773492e671b3e17abd476d42aa78a32"),
)


def pins_id() -> str:
    """A short name for this exact table: the fetched copy lives under it, so changed pins fetch anew."""
    text = "\n".join(f"{s.file} {s.sha256}" for s in SOURCES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def mismatches(root: Path) -> list[str]:
    """Every pinned file under ``root`` that is missing or whose bytes are not the pinned ones, one line each."""
    problems = []
    for source in SOURCES:
        path = root / source.file
        if not path.is_file():
            problems.append(f"{path}: missing (pinned: {source.url()})")
            continue
        found = hashlib.sha256(path.read_bytes()).hexdigest()
        if found != source.sha256:
            problems.append(f"{path}: sha256 {found} is not the pinned {source.sha256} ({source.repo} {source.tag})")
    return problems
