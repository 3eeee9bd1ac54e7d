"""Azure Functions entry point (Python v2 model): one FunctionApp, one Blueprint per trigger module."""

import azure.functions as func

from functions import BLUEPRINTS
from shared import telemetry

telemetry.configure()  # Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set; never raises
app = func.FunctionApp()

for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
