"""The Azure Functions app: builds the FunctionApp and registers the blueprints."""

import azure.functions as func

from functions import gate, http_api, scheduler, worker
from shared.settings import check_host_settings

# Under the Functions host a missing or invalid setting stops indexing with one
# line that names each of them, instead of failing on the first invocation.
check_host_settings()

app = func.FunctionApp()
app.register_functions(scheduler.bp)
app.register_functions(worker.bp)
app.register_functions(gate.bp)
app.register_functions(http_api.bp)
