# sshd: the rolled-out allow list (the service accounts and the province file's named administrators)
sshd_clean
