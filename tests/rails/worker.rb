# frozen_string_literal: true

# A stand-in for the Rails app's Sidekiq worker (see docs/contract.md §3, §4), so the
# service's end-to-end tests can check that what it enqueues really turns into rows.
#
#   REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=mysql2://chat_service_local:chat-service-local@127.0.0.1:3306/NAME \
#     sidekiq -r ./tests/rails/worker.rb -q default        (or: scripts/worker)
#
# Built from Debian's packages: Sidekiq 6.4 and Rails 6.1, while production runs Sidekiq 7
# and Rails 8.1. Rails 8.1 is stricter about the job data than Rails 6.1 (it parses
# enqueued_at with Time.iso8601), so ApplicationJob and WireFormatCheck below reject what
# production would reject, and also anything that departs from the contract's wire format,
# so a badly formed job fails here (and lands in the `retry` set) rather than passing.
#
# Environment:
#   DATABASE_URL          required, mysql2://user[:pass]@host:port/database
#   REDIS_URL             default redis://127.0.0.1:6379/0; a bare host:port is accepted too
#   SIDEKIQ_CONCURRENCY   worker threads, default 5 (set here; sidekiq's -c is overridden)
#   SIDEKIQ_MAX_RETRIES   retries before a job goes to the `dead` set (Sidekiq's default: 25)
#   SIDEKIQ_RETRY_IN      seconds before each retry, instead of Sidekiq's 15s+ backoff; also
#                         makes the retry set be polled about every second
#   SEARCH=down           messages are indexed for search, which is down (see the end)
#   RAILS_JOBS            as_in_the_app: with SEARCH, the Rails app's indexing and job

require "time"
require "json"
require "sidekiq"
require "active_record"
require "active_job"
require "active_job/queue_adapters/sidekiq_adapter"

# Debian's redis-rb 4.8 warns on every Sidekiq 6.4 BRPOP; the noise would bury job errors.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

CONCURRENCY = Integer(ENV.fetch("SIDEKIQ_CONCURRENCY", "5"))

def redis_url
  url = ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0")
  # The Go service's REDIS_URL was host:port; accept that form too.
  url.include?("://") ? url : "redis://#{url}"
end

database_url = ENV["DATABASE_URL"].to_s
abort "worker.rb: DATABASE_URL is not set (mysql2://chat_service_local:chat-service-local@127.0.0.1:3306/NAME)" if database_url.empty?

# --- Sidekiq ---------------------------------------------------------------------------

Sidekiq.options[:concurrency] = CONCURRENCY
Sidekiq.options[:max_retries] = Integer(ENV["SIDEKIQ_MAX_RETRIES"]) if ENV["SIDEKIQ_MAX_RETRIES"]
if ENV["SIDEKIQ_RETRY_IN"]
  # Scheduled/retry sets are otherwise polled every ~5-15 s; a short fixed interval keeps
  # tests that wait for a retry short.
  Sidekiq.options[:poll_interval_average] = 1
end

# Sidekiq's CLI requires a Redis pool of at least concurrency + 2 connections.
Sidekiq.configure_server { |config| config.redis = {url: redis_url, size: CONCURRENCY + 5} }
Sidekiq.configure_client { |config| config.redis = {url: redis_url, size: 2} }

# --- ActiveRecord ----------------------------------------------------------------------

ActiveRecord::Base.establish_connection(
  url: database_url,
  encoding: "utf8mb4",
  # One connection per worker thread, plus headroom so no thread ever waits for one.
  pool: CONCURRENCY + 2
)
# Rails apps (load_defaults >= 5.0) make belongs_to required; outside Rails it defaults off.
ActiveRecord::Base.belongs_to_required_by_default = true
ActiveRecord::Base.logger = nil

class ChatApplication < ActiveRecord::Base
  has_many :chats
end

class Chat < ActiveRecord::Base
  belongs_to :chat_application
  has_many :messages
end

class Message < ActiveRecord::Base
  belongs_to :chat
  validates :body, presence: true
end

# --- The wire format -------------------------------------------------------------------

# Raised for a job whose JSON departs from the contract; its name shows up as
# error_class in the job's entry in the `retry` set.
class WireFormatError < StandardError; end

module WireFormat
  WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
  UUID = /\A\h{8}-\h{4}-\h{4}-\h{4}-\h{12}\z/
  # UTC ISO 8601 with nine fractional digits, e.g. 2026-11-27T16:24:22.346034123Z
  ENQUEUED_AT = /\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\z/
  JOB_DATA_KEYS = %w[job_class job_id provider_job_id queue_name priority arguments executions
                     exception_executions locale timezone enqueued_at scheduled_at].freeze

  module_function

  def fail!(msg) = raise(WireFormatError, msg)

  # The Sidekiq envelope: what Sidekiq 7 and the ActiveJob wrapper read.
  def check_envelope!(job)
    fail!("class is #{job["class"].inspect}, not #{WRAPPER}") unless job["class"] == WRAPPER
    fail!("queue is #{job["queue"].inspect}, not \"default\"") unless job["queue"] == "default"
    fail!("retry is #{job["retry"].inspect}, not true") unless job["retry"] == true
    fail!("jid #{job["jid"].inspect} is not 24 lowercase hex") unless job["jid"].to_s.match?(/\A[0-9a-f]{24}\z/)
    %w[created_at enqueued_at].each do |k|
      # Seconds since the epoch as a number (not milliseconds, not a string).
      v = job[k]
      fail!("#{k} #{v.inspect} is not epoch seconds as a float") unless v.is_a?(Numeric) && v > 1e9 && v < 1e10
    end
    args = job["args"]
    fail!("args must be a one-element array holding the job data") unless args.is_a?(Array) && args.size == 1 && args[0].is_a?(Hash)
    data = args[0]
    fail!("wrapped #{job["wrapped"].inspect} differs from job_class #{data["job_class"].inspect}") unless job["wrapped"] == data["job_class"]
    missing = JOB_DATA_KEYS - data.keys
    fail!("job data lacks #{missing.join(", ")}") unless missing.empty?
    # Checked here because the wrapper overwrites it with the jid before the job sees it.
    fail!("provider_job_id is #{data["provider_job_id"].inspect}, not null") unless data["provider_job_id"].nil?
  end

  # The ActiveJob job data, as Rails 8.1 serializes it and reads it back.
  def check_job_data!(data)
    fail!("job_id #{data["job_id"].inspect} is not a UUID") unless data["job_id"].to_s.match?(UUID)
    fail!("queue_name is #{data["queue_name"].inspect}") unless data["queue_name"] == "default"
    fail!("priority is #{data["priority"].inspect}, not null") unless data["priority"].nil?
    fail!("arguments is not an array") unless data["arguments"].is_a?(Array)
    fail!("executions is #{data["executions"].inspect}, not 0") unless data["executions"] == 0
    fail!("exception_executions is not {}") unless data["exception_executions"] == {}
    fail!("locale is #{data["locale"].inspect}, not \"en\"") unless data["locale"] == "en"
    fail!("timezone is #{data["timezone"].inspect}, not \"UTC\"") unless data["timezone"] == "UTC"
    fail!("scheduled_at is #{data["scheduled_at"].inspect}, not null") unless data["scheduled_at"].nil?
    ea = data["enqueued_at"]
    # Ruby's Time.iso8601 accepts a time without a zone (as local time); the contract says
    # production fails on it, so the zone is required here explicitly.
    fail!("enqueued_at #{ea.inspect} is not UTC ISO 8601 with nine fractional digits") unless ea.is_a?(String) && ea.match?(ENQUEUED_AT)
  end
end

# Sidekiq server middleware: runs inside Sidekiq's retry handling, so a raise here sends
# the job to the `retry` set like any other failure.
class WireFormatCheck
  def call(_worker, job, _queue)
    # Not a job the service enqueues: this worker's own (SEARCH below), in Rails 6.1's format.
    WireFormat.check_envelope!(job) unless job["wrapped"] == "IndexMessageJob"
    yield
  ensure
    # Outside Rails nothing returns a thread's connection to the pool after a job.
    ActiveRecord::Base.clear_active_connections!
  end
end

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add WireFormatCheck }
end

if ENV["SIDEKIQ_RETRY_IN"]
  retry_in = Integer(ENV["SIDEKIQ_RETRY_IN"])
  # Sidekiq still adds rand(10) * (retry_count + 1) seconds of jitter on top of this.
  ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper.sidekiq_retry_in { |_count, _exc| retry_in }
end

# --- ActiveJob -------------------------------------------------------------------------

ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Sidekiq.logger

class ApplicationJob < ActiveJob::Base
  queue_as :default

  # What Rails 8.1 does on top of Rails 6.1 when it reads a job back: it parses the times
  # with Time.iso8601 (6.1 keeps the raw value), so a float or garbage makes the job fail.
  def deserialize(job_data)
    WireFormat.check_job_data!(job_data)
    super
    self.enqueued_at = Time.iso8601(job_data["enqueued_at"]) if job_data["enqueued_at"]
    self.scheduled_at = Time.iso8601(job_data["scheduled_at"]) if job_data["scheduled_at"]
  end

  private

  # Contract: integers are JSON integers, strings are JSON strings.
  def expect!(value, type, name)
    raise WireFormatError, "#{name} is #{value.inspect}, not #{type}" unless value.is_a?(type)
  end
end

class CreateChatJob < ApplicationJob
  def perform(chat_application_id, chat_number)
    expect!(chat_application_id, Integer, "chat_application_id")
    expect!(chat_number, Integer, "chat_number")
    ActiveRecord::Base.transaction do
      # The counter first: its UPDATE takes the parent row's exclusive lock before the
      # INSERT's foreign-key check takes a shared one. In the other order two concurrent
      # jobs each hold the shared lock and wait for the exclusive one: InnoDB deadlock,
      # and a retry (seen with 300 concurrent chats and 5 threads).
      ChatApplication.increment_counter(:chats_count, chat_application_id, touch: true)
      # A duplicate number raises ActiveRecord::RecordNotUnique (unique index): the
      # transaction rolls back, the job is retried, chats_count is not incremented twice.
      Chat.create!(chat_application_id: chat_application_id, number: chat_number)
    end
  end
end

class CreateMessageJob < ApplicationJob
  def perform(chat_id, message_number, message_body)
    expect!(chat_id, Integer, "chat_id")
    expect!(message_number, Integer, "message_number")
    expect!(message_body, String, "message_body")
    ActiveRecord::Base.transaction do
      # Counter first, for the same lock-order reason as CreateChatJob.
      Chat.increment_counter(:messages_count, chat_id, touch: true)
      # create! raises ActiveRecord::RecordInvalid for a blank body (validation) and
      # ActiveRecord::ValueTooLong for a body over 65,535 bytes; both roll back the count.
      Message.create!(chat_id: chat_id, number: message_number, body: message_body)
    end
  end
end

# --- Search, with Elasticsearch down (docs/rails.md, "What a 201 cannot cover") --------
#
# SEARCH=down gives messages the Rails app's search indexing with the cluster unreachable:
# every index call raises, as elasticsearch-model's does then. RAILS_JOBS=as_in_the_app
# runs the app's own indexing and CreateMessageJob, modelled on its source as
# docs/rails.md reads it; without it, what docs/rails.md advises instead. Unset, messages
# are not indexed at all, as in every other test.

if ENV["SEARCH"] == "down"
  class SearchUnavailable < StandardError; end

  module SearchIndex
    def self.index!(message)
      raise SearchUnavailable, "search is down: message #{message.id} is not indexed"
    end
  end

  if ENV["RAILS_JOBS"] == "as_in_the_app"
    class Message
      # Elasticsearch::Model::Callbacks indexes after the INSERT commits; from Rails 5 on an
      # exception there reaches the caller of create!. And the model's uniqueness check.
      after_commit -> { SearchIndex.index!(self) }, on: :create
      validates :number, uniqueness: {scope: :chat_id}
    end

    class CreateMessageJob
      # The row first, in its own transaction; the count and the second index call after.
      def perform(chat_id, message_number, message_body)
        message = Chat.find(chat_id).messages.create!(number: message_number, body: message_body)
        Chat.increment_counter(:messages_count, chat_id)
        SearchIndex.index!(message)
      rescue ActiveRecord::RecordNotUnique
        raise
      end
    end
  else
    # Indexing in a job of its own, by id, with its own retries: a repeat is harmless, and
    # its failure never fails the insert.
    class IndexMessageJob < ActiveJob::Base # not ApplicationJob: its checks are the service's
      def perform(message_id)
        SearchIndex.index!(Message.find(message_id))
      end
    end

    class Message
      after_commit -> { IndexMessageJob.perform_later(id) }, on: :create
    end
  end
end
