# podwire's TAP and UDP I/O addon (src/io/native) and the pod sandbox's launcher
# (src/sandbox/native). Built by the package's install script; when the addon cannot be
# built, src/io/open.ts falls back to native-free/, and without the launcher pods get only
# their network namespace (src/sandbox/launcher.ts says so).
{
  "targets": [
    {
      "target_name": "podwire_io",
      "sources": [
        "src/io/native/addon.cc",
        "src/io/native/port.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      # Node's common.gypi asks for -O3 and gnu++17 in Release; the brief is plain C++17 at -O2.
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3", "-std=gnu++17"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra"]
    },
    {
      # The pod sandbox's launcher (src/sandbox/native): a program, not an addon, because it
      # joins namespaces and changes its root and credentials, which a threaded process cannot.
      "target_name": "podwire-sandbox",
      "type": "executable",
      "sources": ["src/sandbox/native/sandbox.c"],
      "cflags!": ["-O3"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
