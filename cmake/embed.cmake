# Turns a file into a C header holding its bytes as an array:
#   cmake -DIN=<file> -DOUT=<header> -DNAME=<identifier> -P embed.cmake
# gives `static const char NAME[] = {...};` (no terminating NUL: the size
# is sizeof NAME). Run at build time, so the header follows the file.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
  "\\1\n  " bytes "${bytes}")
get_filename_component(src "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${src} by cmake/embed.cmake: do not edit. */\n"
  "static const char ${NAME}[] = {\n  ${bytes}\n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
