"""Azure Functions entry point (Python v2 model): one FunctionApp, one Blueprint per trigger module."""

import azure.functions as func

from functions import BLUEPRINTS

app = func.FunctionApp()

for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
