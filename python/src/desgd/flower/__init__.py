"""DeSGD on a real federation: a Flower (1.42, Message API) ServerApp and
ClientApp around the live server.

The ServerApp (server_app.py) registers the SuperNodes, opens a
`desgd.live.LiveServer` and runs `DesgdStrategy` (strategy.py): each round it
sends x_t and S_t to the clients, and hands their signed class momenta to
desgd's own aggregation, attack, server step and trace writer. The ClientApp
(client_app.py) is the client half of Algorithm 1 in torch
(desgd.torch_client). `run_local.py` starts a SuperLink and SuperNodes on
127.0.0.1 and runs the app.
"""
