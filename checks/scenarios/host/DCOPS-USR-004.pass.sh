# every named administrator of the province file has their account, in dcops-admins, with their keys
for a in $(ls /etc/ssh/dcops-admins/ | sed -n 's/\.keys$//p'); do usermod -aG dcops-admins "$a"; done
