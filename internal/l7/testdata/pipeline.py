import socket, time
s = socket.create_connection(("127.0.0.41", 8080))
s.sendall(b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.41:8080\r\nUser-Agent: pipeline-test/1\r\n\r\n"
          b"GET /api/orders HTTP/1.1\r\nHost: 127.0.0.41:8080\r\nUser-Agent: pipeline-test/1\r\n\r\n"
          b"GET /nope HTTP/1.1\r\nHost: 127.0.0.41:8080\r\nUser-Agent: pipeline-test/1\r\nConnection: close\r\n\r\n")
deadline = time.time() + 3
while time.time() < deadline:
    d = s.recv(65536)
    if not d: break
s.close()
