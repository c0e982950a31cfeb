wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"task_type": "compute_sum", "parameters": {"numbers": [1, 2, 3, 4.5]}}'
