package api

import "time"

// healthTimeout bounds one health answer; liveness must answer within 5 s (operations.md §2.2).
const healthTimeout = 4 * time.Second
