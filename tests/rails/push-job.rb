# frozen_string_literal: true

# Pushes one job to Redis exactly as the contract's "wire format" section describes
# (the way Sidekiq's client and Rails 8.1 would), for checking the stand-in worker by hand.
#
#   ruby tests/rails/push-job.rb CreateChatJob '[1, 1]'
#   ruby tests/rails/push-job.rb CreateMessageJob '[1, 1, "hi"]'
#
# Env: REDIS_URL (default redis://127.0.0.1:6379/0). ENQUEUED_AT_JSON, when set, replaces
# the job data's enqueued_at with that JSON value (to push a deliberately wrong job).
# Prints the jid.

require "json"
require "time"
require "securerandom"
require "redis"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

job_class, args_json = ARGV
abort "usage: push-job.rb JOB_CLASS ARGUMENTS_JSON" unless job_class && args_json

now = Time.now
data = {
  "job_class" => job_class,
  "job_id" => SecureRandom.uuid,
  "provider_job_id" => nil,
  "queue_name" => "default",
  "priority" => nil,
  "arguments" => JSON.parse(args_json),
  "executions" => 0,
  "exception_executions" => {},
  "locale" => "en",
  "timezone" => "UTC",
  "enqueued_at" => now.utc.iso8601(9),
  "scheduled_at" => nil
}
data["enqueued_at"] = JSON.parse(ENV["ENQUEUED_AT_JSON"]) if ENV["ENQUEUED_AT_JSON"]

job = {
  "class" => "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
  "wrapped" => job_class,
  "queue" => "default",
  "args" => [data],
  "retry" => true,
  "jid" => SecureRandom.hex(12),
  "created_at" => now.to_f,
  "enqueued_at" => now.to_f
}

redis = Redis.new(url: ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0"))
redis.call("SADD", "queues", "default")
redis.lpush("queue:default", JSON.generate(job))
puts job["jid"]
