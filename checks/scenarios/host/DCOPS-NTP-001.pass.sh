# chrony follows the hub and is synchronised
restore /etc/chrony/chrony.conf; systemctl restart chrony; chronyc waitsync 60 0 0 1 >/dev/null
