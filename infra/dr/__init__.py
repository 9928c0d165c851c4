"""Disaster recovery: backups and restore tests (:mod:`infra.dr.backup`), failover and failback."""
