# sshd: Ciphers aes128-cbc,aes256-ctr (a drop-in read before the hardening one)
sshd_set 'Ciphers aes128-cbc,aes256-ctr'
