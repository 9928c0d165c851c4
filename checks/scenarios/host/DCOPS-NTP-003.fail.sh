# the hub's upstream time sources are removed: it serves its own free-running clock (local stratum only)
backup /etc/chrony/chrony.conf; sed -i '/^server /d' /etc/chrony/chrony.conf; systemctl restart chrony; sleep 1
