#!/bin/bash
# Health check: the broker accepts a connection on its internal listener and has registered
# (its metadata log exists), without starting a JVM every few seconds.
(exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && ls /var/lib/kafka/data/__cluster_metadata-0/*.log >/dev/null 2>&1
