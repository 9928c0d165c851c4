# only the hub (the rolled-out chrony.conf, restored after the fail and unreadable scenarios)
restore /etc/chrony/chrony.conf
