-- wrk: post a short message as the composer does; cookie, CSRF and HX-Request headers come
-- from the command line (bench/load.py).
wrk.method = "POST"
wrk.body = "text=Walked+Biscuit+at+noon%2C+all+good.+Water+bowl+refilled."
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
