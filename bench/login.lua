-- wrk: POST the same login again and again (bench/login.py sets EMAIL)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"' .. os.getenv("EMAIL") ..
           '","password":"correct horse battery staple"}'
