"""fakevmm: what fake-firecracker and fake-cloud-hypervisor share.

  api.py    HTTP/1.1 on a unix socket as micro_http serves it (http.server underneath)
  spec.py   request bodies checked against the published specs (jsonschema)
  qemu.py   the real guest behind the fake: qemu-system-x86_64 -accel tcg over QMP
  vsock.py  hybrid vsock (CONNECT <port> / OK <n>) over virtserialports attestfs.shell.K
  vmm.py    the process: main-thread control loop, logging, clean-up on exit and signals
"""
