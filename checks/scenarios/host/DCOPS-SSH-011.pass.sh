# sshd_config root-owned, 0644
restore /etc/ssh/sshd_config; chown root:root /etc/ssh/sshd_config; chmod 0644 /etc/ssh/sshd_config
