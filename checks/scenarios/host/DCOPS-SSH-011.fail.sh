# sshd_config writable by everyone
backup /etc/ssh/sshd_config; chmod 0666 /etc/ssh/sshd_config
