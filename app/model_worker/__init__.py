"""The model worker: the one place where a model file written by someone else is loaded.

Off by default (`COUNTERSIGN_MODEL_IMPORTANCE=logged`): the app and the CLI read importance from
a logged `feature_importance.json` and never deserialise a model. With
`COUNTERSIGN_MODEL_IMPORTANCE=worker`, `launcher.compute_importance` starts `child` as a separate,
short-lived `python -I` process that receives a folder holding the model files and the data and
nothing else: an environment built from an allow-list (no COUNTERSIGN_*, no database URL, no
MLflow credentials, no key paths), limits on memory, CPU time and file size, a wall-clock timeout
that kills its whole process group, no inherited file descriptors, stdin from /dev/null and its
own working folder. Before it reads the model it confines itself (`sandbox`: its own user,
mount, network, PID and IPC namespaces and a root folder holding only Python, our code and its
folder, read-only), or refuses. It answers with one JSON document on stdout that the launcher
validates strictly before anything of it reaches a page or the evidence.

`launcher` imports neither mlflow nor the model; `child` imports mlflow and scikit-learn and
none of the app's settings, stores or governance code.
"""
