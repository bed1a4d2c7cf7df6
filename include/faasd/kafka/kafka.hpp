#pragma once
// The Kafka adapters (module `kafka`): see docs/kafka.md.

#include <faasd/kafka/admin.hpp>
#include <faasd/kafka/client.hpp>
#include <faasd/kafka/consumer.hpp>
#include <faasd/kafka/error.hpp>
#include <faasd/kafka/mock_cluster.hpp>
#include <faasd/kafka/producer.hpp>
#include <faasd/kafka/topics.hpp>
#include <faasd/kafka/types.hpp>
