"""The Azure Functions app: builds the FunctionApp and registers the blueprints."""

import azure.functions as func

from functions import gate, http_api, scheduler, worker

app = func.FunctionApp()
app.register_functions(scheduler.bp)
app.register_functions(worker.bp)
app.register_functions(gate.bp)
app.register_functions(http_api.bp)
