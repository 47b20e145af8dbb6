/* streamlua's public C API: everything a custom module written in C needs. */
#ifndef STREAMLUA_H_INCLUDED_
#define STREAMLUA_H_INCLUDED_

#include "buffer.h"
#include "fifo.h"
#include "filter.h"
#include "frame.h"
#include "log.h"
#include "mailbox.h"
#include "master.h"
#include "object.h"
#include "pool.h"
#include "prbs.h"
#include "slave.h"
#include "status.h"
#include "stream_reader.h"
#include "stream_writer.h"
#include "version.h"
#include "wait.h"

#endif
