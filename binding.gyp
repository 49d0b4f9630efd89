{
  "targets": [
    {
      "target_name": "arbor_native",
      "sources": ["native/arbor_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
