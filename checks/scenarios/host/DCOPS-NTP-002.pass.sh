# only the hub
restore /etc/chrony/chrony.conf
